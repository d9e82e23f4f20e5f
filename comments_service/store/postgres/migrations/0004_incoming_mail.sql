-- Version 4: messages the reply worker read from the author's mailbox (InboxStore,
-- postgres/inbox.py), one row per Message-ID digest, recorded before the reply is posted so
-- that each message is processed exactly once.

CREATE TABLE incoming_mail (
    key text COLLATE "C" PRIMARY KEY,
    status text COLLATE "C" NOT NULL,
    received text COLLATE "C" NOT NULL,
    record json NOT NULL
);

CREATE INDEX incoming_mail_by_status ON incoming_mail (status, received);
