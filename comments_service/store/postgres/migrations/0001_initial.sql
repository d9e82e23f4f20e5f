-- tellmemore's PostgreSQL schema, version 1 (store_postgres.py; docs/ARCHITECTURE.md, "Stores").
--
-- Each table keeps the whole record as JSON (the source of truth, read back with from_record)
-- plus plain columns for what is looked up or sorted. The type is json, not jsonb: json keeps
-- the text as written, so a "\u0000" in a comment survives (jsonb refuses it). Sorted text
-- columns use the "C" collation, so that they sort as Python sorts strings (code points).

CREATE TABLE comments (
    id text COLLATE "C" PRIMARY KEY,
    -- The order comments were stored in: ties in created keep it, as the TinyDB store does.
    seq bigint GENERATED ALWAYS AS IDENTITY,
    thread text COLLATE "C" NOT NULL,
    state text NOT NULL,
    public boolean NOT NULL,
    question text COLLATE "C",
    is_author boolean NOT NULL,
    created text COLLATE "C" NOT NULL,
    request text COLLATE "C",
    -- Python's casefold() of the body and name, for the moderation search (ß matches ss).
    body_folded text NOT NULL,
    name_folded text NOT NULL,
    record json NOT NULL
);
-- The queue: awaiting_reply, oldest first, store-wide or per thread and question.
CREATE INDEX comments_queue ON comments (created, id) WHERE state = 'awaiting_reply';
CREATE INDEX comments_queue_thread ON comments (thread, question, created, id)
    WHERE state = 'awaiting_reply';
-- Other states' listings and every count by state, thread and question.
CREATE INDEX comments_state ON comments (state, thread, question, created, id);
-- A thread's comments in the order shown, and public_counts.
CREATE INDEX comments_thread ON comments (thread, created, seq);
-- Newest first (the search page without text) and the author's replies (the nudge).
CREATE INDEX comments_newest ON comments (created DESC, id DESC);
CREATE INDEX comments_author ON comments (created DESC, id DESC) WHERE is_author;
-- Members of a request group.
CREATE INDEX comments_request ON comments (request) WHERE request IS NOT NULL;

-- A token per thread that changes with every write of the thread (ETags).
CREATE TABLE thread_versions (
    thread text COLLATE "C" PRIMARY KEY,
    version text NOT NULL
);

CREATE TABLE authors (
    id text COLLATE "C" PRIMARY KEY,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    email_folded text NOT NULL,
    created text COLLATE "C" NOT NULL,
    record json NOT NULL,
    CONSTRAINT authors_email_unique UNIQUE (email_folded)
);

CREATE TABLE outbox_messages (
    id text COLLATE "C" PRIMARY KEY,
    status text NOT NULL,
    created text COLLATE "C" NOT NULL,
    next_attempt_at text COLLATE "C" NOT NULL,
    claimed_until text COLLATE "C",
    address text NOT NULL,
    dedupe_key text,
    record json NOT NULL,
    CONSTRAINT outbox_dedupe_key_unique UNIQUE (dedupe_key)
);
-- The sender's claims: due queued messages and expired leases, oldest due first.
CREATE INDEX outbox_due ON outbox_messages (next_attempt_at, created, id)
    WHERE status IN ('queued', 'sending');
CREATE INDEX outbox_status ON outbox_messages (status, created);
CREATE INDEX outbox_address ON outbox_messages (address, created);
CREATE INDEX outbox_newest ON outbox_messages (left(id, 8) DESC, created DESC, id DESC);

CREATE TABLE mail_addresses (
    address text PRIMARY KEY,
    record json NOT NULL
);

CREATE TABLE request_groups (
    id text COLLATE "C" PRIMARY KEY,
    record json NOT NULL
);

-- The grouper's saved state: one row once anything was saved (log_id names the pair of the
-- snapshot and the log records after it), and the records, numbered in the order appended.
CREATE TABLE request_tally (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    log_id text NOT NULL,
    snapshot json
);
CREATE TABLE request_log (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    log_id text NOT NULL,
    record json NOT NULL
);
CREATE INDEX request_log_by_log ON request_log (log_id, position);
