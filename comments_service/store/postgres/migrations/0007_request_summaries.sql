-- Version 7: the requests summed up without reading every filed comment (issue 19;
-- store/request_summaries.py says what counts, store/postgres/request_summaries.py reads these).
--
-- A comment counts in a request when the author filed it there (request_filed), it is a
-- reader's, the request is not '-' ("not a request") and it is live (awaiting a reply or
-- replied). For those, a trigger keeps, in the writing transaction:
--   request_people  per request and person (the reader_key, or '#' and the comment's id for a
--                   comment without one) the comments counted;
--   request_places  per request and place (thread, question; no question kept as '') the same;
--   request_totals  per request its people, places and comments: the requests page's counts.
-- Two partial indexes list a request's counted comments and the filings the ranking learns
-- from (counted, or filed as not a request) in time order, so "the newest 30" and "the latest
-- 600" are read from their ends.

CREATE INDEX comments_counted ON comments (request, created, id)
    INCLUDE (reader_key, thread, question, state)
    WHERE request_filed AND NOT is_author AND request IS NOT NULL AND request <> '-'
    AND state IN ('awaiting_reply', 'replied');
CREATE INDEX comments_learned ON comments (created, id)
    WHERE request_filed AND NOT is_author AND request IS NOT NULL
    AND (request = '-' OR state IN ('awaiting_reply', 'replied'));

CREATE TABLE request_totals (
    request text COLLATE "C" PRIMARY KEY,
    people bigint NOT NULL,
    places bigint NOT NULL,
    comments bigint NOT NULL
);
CREATE TABLE request_people (
    request text COLLATE "C" NOT NULL,
    person text COLLATE "C" NOT NULL,
    comments bigint NOT NULL,
    PRIMARY KEY (request, person)
);
CREATE TABLE request_places (
    request text COLLATE "C" NOT NULL,
    thread text COLLATE "C" NOT NULL,
    question text COLLATE "C" NOT NULL,
    comments bigint NOT NULL,
    PRIMARY KEY (request, thread, question)
);
-- A request's main places, most comments first (ties as Python sorts them).
CREATE INDEX request_places_most ON request_places (request, comments DESC, thread, question);

INSERT INTO request_people (request, person, comments)
    SELECT request, coalesce(reader_key, '#' || id), count(*) FROM comments
    WHERE request_filed AND NOT is_author AND request IS NOT NULL AND request <> '-'
    AND state IN ('awaiting_reply', 'replied')
    GROUP BY 1, 2;
INSERT INTO request_places (request, thread, question, comments)
    SELECT request, thread, coalesce(question, ''), count(*) FROM comments
    WHERE request_filed AND NOT is_author AND request IS NOT NULL AND request <> '-'
    AND state IN ('awaiting_reply', 'replied')
    GROUP BY 1, 2, 3;
INSERT INTO request_totals (request, people, places, comments)
    SELECT p.request, p.people, l.places, p.comments
    FROM (SELECT request, count(*) AS people, sum(comments) AS comments
          FROM request_people GROUP BY request) AS p
    JOIN (SELECT request, count(*) AS places FROM request_places GROUP BY request) AS l
    USING (request);

CREATE FUNCTION request_counted(c comments) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT c.request_filed AND NOT c.is_author AND c.request IS NOT NULL AND c.request <> '-'
           AND c.state IN ('awaiting_reply', 'replied')
$$;

-- Add ``step`` (1 or -1) of one comment to its request's counts; rows reaching 0 go.
CREATE FUNCTION request_counts_step(c comments, step integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    person_left bigint;
    place_left bigint;
BEGIN
    INSERT INTO request_totals AS t (request, people, places, comments)
        VALUES (c.request, 0, 0, step)
        ON CONFLICT (request) DO UPDATE SET comments = t.comments + step;
    INSERT INTO request_people AS p (request, person, comments)
        VALUES (c.request, coalesce(c.reader_key, '#' || c.id), step)
        ON CONFLICT (request, person) DO UPDATE SET comments = p.comments + step
        RETURNING comments INTO person_left;
    INSERT INTO request_places AS l (request, thread, question, comments)
        VALUES (c.request, c.thread, coalesce(c.question, ''), step)
        ON CONFLICT (request, thread, question) DO UPDATE SET comments = l.comments + step
        RETURNING comments INTO place_left;
    -- A person (a place) joins when their count goes from 0 to 1 and leaves at 0.
    UPDATE request_totals SET
        people = people + CASE WHEN step > 0 AND person_left = 1 THEN 1
                               WHEN step < 0 AND person_left = 0 THEN -1 ELSE 0 END,
        places = places + CASE WHEN step > 0 AND place_left = 1 THEN 1
                               WHEN step < 0 AND place_left = 0 THEN -1 ELSE 0 END
        WHERE request = c.request;
    IF person_left <= 0 THEN
        DELETE FROM request_people
            WHERE request = c.request AND person = coalesce(c.reader_key, '#' || c.id);
    END IF;
    IF place_left <= 0 THEN
        DELETE FROM request_places WHERE request = c.request AND thread = c.thread
            AND question = coalesce(c.question, '');
    END IF;
    DELETE FROM request_totals WHERE request = c.request AND comments <= 0;
END
$$;

CREATE FUNCTION request_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND request_counted(OLD) THEN
        PERFORM request_counts_step(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND request_counted(NEW) THEN
        PERFORM request_counts_step(NEW, 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER request_counts_on_insert_or_delete AFTER INSERT OR DELETE ON comments
    FOR EACH ROW EXECUTE FUNCTION request_counts_follow();
-- Only when what counts, or whom and where, changes: most updates (an edit) change none.
CREATE TRIGGER request_counts_on_update
    AFTER UPDATE OF request, request_filed, state, is_author, reader_key, thread, question
    ON comments FOR EACH ROW
    WHEN (OLD.request IS DISTINCT FROM NEW.request
          OR OLD.request_filed IS DISTINCT FROM NEW.request_filed
          OR OLD.state IS DISTINCT FROM NEW.state OR OLD.is_author IS DISTINCT FROM NEW.is_author
          OR OLD.reader_key IS DISTINCT FROM NEW.reader_key
          OR OLD.thread IS DISTINCT FROM NEW.thread
          OR OLD.question IS DISTINCT FROM NEW.question)
    EXECUTE FUNCTION request_counts_follow();

-- request_changes counts every write that may change a summary or the learned filings: of a
-- comment filed under a request or as not a request (its text, its state, where it is filed).
-- A process keeps what it worked out of them (the ranking's members and threshold) while the
-- count stays the same. One row, updated in the writing transaction, so a reader never sees
-- the new count without the change; only the author's filings and the writes of filed
-- comments wait on it.
CREATE TABLE request_changes (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    changes bigint NOT NULL
);
INSERT INTO request_changes (only_row, changes) VALUES (true, 0);

CREATE FUNCTION request_changes_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE request_changes SET changes = changes + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER request_changes_on_insert AFTER INSERT ON comments FOR EACH ROW
    WHEN (NEW.request_filed AND NEW.request IS NOT NULL AND NOT NEW.is_author)
    EXECUTE FUNCTION request_changes_count();
CREATE TRIGGER request_changes_on_delete AFTER DELETE ON comments FOR EACH ROW
    WHEN (OLD.request_filed AND OLD.request IS NOT NULL AND NOT OLD.is_author)
    EXECUTE FUNCTION request_changes_count();
CREATE TRIGGER request_changes_on_update AFTER UPDATE ON comments FOR EACH ROW
    WHEN ((OLD.request_filed AND OLD.request IS NOT NULL AND NOT OLD.is_author)
          OR (NEW.request_filed AND NEW.request IS NOT NULL AND NOT NEW.is_author))
    EXECUTE FUNCTION request_changes_count();
