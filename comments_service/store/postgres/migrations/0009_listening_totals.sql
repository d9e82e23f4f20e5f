-- Version 9: the metrics page's figures kept up to date on write (issue 19), so that showing
-- them reads a few hundred rows, not every reader comment (store/postgres/listening.py).
--
-- For the reader comments that count (live: awaiting a reply or replied) a trigger keeps, in
-- the writing transaction:
--   listening_groups   per thread and question (no question kept as '') the comments, how many
--                      are replied, individually replied and waiting, and their words. Each
--                      write of a row gives it a new ``changed`` number, so a process that
--                      keeps what it worked out of the rows (listening_groups.py) reads again
--                      only the groups whose number moved, with their times to a reply in
--                      order from comments_reply_times. A row that reaches no comment stays,
--                      at zero: a row taken away and put back could look unchanged.
--   listening_weeks    per ISO week written (its Monday, UTC) and thread, the comments received.
-- and for the author's standing comments (posted):
--   listening_authors  per thread how many there are and their words.
-- Each write changes a few counts, whatever the thread's size (no list of times is rewritten).
-- Keys are per thread, as comment_counts' are: writes to one thread wait for each other's
-- row lock, writes to different threads do not.

CREATE FUNCTION listening_week(created text) RETURNS date LANGUAGE sql STABLE AS $$
    SELECT date_trunc('week', created::timestamptz AT TIME ZONE 'UTC')::date
$$;

CREATE SEQUENCE listening_changes;
CREATE TABLE listening_groups (
    thread text COLLATE "C" NOT NULL,
    question text COLLATE "C" NOT NULL,
    reader_comments bigint NOT NULL,
    replied bigint NOT NULL,
    individual bigint NOT NULL,
    waiting bigint NOT NULL,
    reader_words bigint NOT NULL,
    changed bigint NOT NULL DEFAULT nextval('listening_changes'),
    PRIMARY KEY (thread, question)
);
CREATE TABLE listening_weeks (
    week date NOT NULL,
    thread text COLLATE "C" NOT NULL,
    received bigint NOT NULL,
    PRIMARY KEY (week, thread)
);
CREATE TABLE listening_authors (
    thread text COLLATE "C" PRIMARY KEY,
    comments bigint NOT NULL,
    words bigint NOT NULL
);

INSERT INTO listening_groups (thread, question, reader_comments, replied, individual, waiting,
                              reader_words)
    SELECT thread, coalesce(question, ''), count(*), count(*) FILTER (WHERE state = 'replied'),
           count(*) FILTER (WHERE individual), count(*) FILTER (WHERE state = 'awaiting_reply'),
           coalesce(sum(words), 0)
    FROM comments WHERE NOT is_author AND state IN ('awaiting_reply', 'replied')
    GROUP BY 1, 2;
INSERT INTO listening_weeks
    SELECT listening_week(created), thread, count(*)
    FROM comments WHERE NOT is_author AND state IN ('awaiting_reply', 'replied')
    GROUP BY 1, 2;
INSERT INTO listening_authors
    SELECT thread, count(*), coalesce(sum(words), 0)
    FROM comments WHERE is_author AND state = 'posted'
    GROUP BY 1;

-- Add ``step`` (1 or -1) of one comment to the figures; weeks and authors' rows reaching no
-- comment go.
CREATE FUNCTION listening_step(c comments, step integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    left_over bigint;
BEGIN
    IF c.is_author THEN
        IF c.state = 'posted' THEN
            INSERT INTO listening_authors AS a (thread, comments, words)
                VALUES (c.thread, step, step * coalesce(c.words, 0))
                ON CONFLICT (thread) DO UPDATE SET comments = a.comments + step,
                    words = a.words + step * coalesce(c.words, 0)
                RETURNING comments INTO left_over;
            IF left_over <= 0 THEN
                DELETE FROM listening_authors WHERE thread = c.thread;
            END IF;
        END IF;
        RETURN;
    END IF;
    IF c.state NOT IN ('awaiting_reply', 'replied') THEN
        RETURN;
    END IF;
    INSERT INTO listening_groups AS g (thread, question, reader_comments, replied, individual,
                                       waiting, reader_words)
        VALUES (c.thread, coalesce(c.question, ''), step,
                CASE WHEN c.state = 'replied' THEN step ELSE 0 END,
                CASE WHEN c.individual THEN step ELSE 0 END,
                CASE WHEN c.state = 'awaiting_reply' THEN step ELSE 0 END,
                step * coalesce(c.words, 0))
        ON CONFLICT (thread, question) DO UPDATE SET
            reader_comments = g.reader_comments + step,
            replied = g.replied + CASE WHEN c.state = 'replied' THEN step ELSE 0 END,
            individual = g.individual + CASE WHEN c.individual THEN step ELSE 0 END,
            waiting = g.waiting + CASE WHEN c.state = 'awaiting_reply' THEN step ELSE 0 END,
            reader_words = g.reader_words + step * coalesce(c.words, 0),
            changed = nextval('listening_changes');
    INSERT INTO listening_weeks AS w (week, thread, received)
        VALUES (listening_week(c.created), c.thread, step)
        ON CONFLICT (week, thread) DO UPDATE SET received = w.received + step
        RETURNING received INTO left_over;
    IF left_over <= 0 THEN
        DELETE FROM listening_weeks
            WHERE week = listening_week(c.created) AND thread = c.thread;
    END IF;
END
$$;

CREATE FUNCTION listening_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM listening_step(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM listening_step(NEW, 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER listening_on_insert_or_delete AFTER INSERT OR DELETE ON comments
    FOR EACH ROW EXECUTE FUNCTION listening_follow();
-- Only when a figure's input changes: most updates (a request filed, a withdrawn reply's
-- record) change none.
CREATE TRIGGER listening_on_update
    AFTER UPDATE OF state, is_author, thread, question, created, words, individual,
                    reply_seconds
    ON comments FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.is_author IS DISTINCT FROM NEW.is_author
          OR OLD.thread IS DISTINCT FROM NEW.thread
          OR OLD.question IS DISTINCT FROM NEW.question
          OR OLD.created IS DISTINCT FROM NEW.created OR OLD.words IS DISTINCT FROM NEW.words
          OR OLD.individual IS DISTINCT FROM NEW.individual
          OR OLD.reply_seconds IS DISTINCT FROM NEW.reply_seconds)
    EXECUTE FUNCTION listening_follow();

-- A group's times to a reply in order, read from the index alone (its question NULL or not).
CREATE INDEX comments_reply_times ON comments (thread, question, reply_seconds)
    WHERE NOT is_author AND state IN ('awaiting_reply', 'replied') AND reply_seconds IS NOT NULL;
-- The aggregates these served are kept above now.
DROP INDEX comments_listening;
DROP INDEX comments_listening_author;
