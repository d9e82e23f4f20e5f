-- Version 5: the moderation pages count without reading the comments (issue 19).
--
-- comment_counts keeps how many comments there are per state, thread, question and author
-- flag, kept up to date on every write by a trigger in the writing transaction, so that the
-- header's counts on every moderation page, the queue's totals and the themes page's answers
-- per question read a few hundred rows whatever the store's size. A NULL question is kept as
-- '' (a key column cannot be NULL; no question id is empty). Concurrent writes to the same
-- key wait for each other's row lock, as writes of one thread already do.
--
-- request_filed, a plain column (filled from the record), lets the requests pages list where
-- each comment stands without parsing its JSON.

ALTER TABLE comments ADD COLUMN request_filed boolean NOT NULL DEFAULT false;
UPDATE comments SET request_filed = true
    WHERE request IS NOT NULL AND record::text ~ '"request_filed":\s*true';

CREATE TABLE comment_counts (
    state text NOT NULL,
    thread text COLLATE "C" NOT NULL,
    question text COLLATE "C" NOT NULL,
    is_author boolean NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (state, thread, question, is_author)
);

INSERT INTO comment_counts (state, thread, question, is_author, count)
    SELECT state, thread, coalesce(question, ''), is_author, count(*)
    FROM comments GROUP BY state, thread, coalesce(question, ''), is_author;

CREATE FUNCTION comment_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE comment_counts SET count = count - 1
            WHERE state = OLD.state AND thread = OLD.thread
            AND question = coalesce(OLD.question, '') AND is_author = OLD.is_author;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO comment_counts (state, thread, question, is_author, count)
            VALUES (NEW.state, NEW.thread, coalesce(NEW.question, ''), NEW.is_author, 1)
            ON CONFLICT (state, thread, question, is_author)
            DO UPDATE SET count = comment_counts.count + 1;
    END IF;
    RETURN NULL;
END
$$;

-- Only when a counted column changes: most updates (a request filed, an edit) touch none.
CREATE TRIGGER comment_counts_on_insert_or_delete AFTER INSERT OR DELETE ON comments
    FOR EACH ROW EXECUTE FUNCTION comment_counts_follow();
CREATE TRIGGER comment_counts_on_update AFTER UPDATE OF state, thread, question, is_author
    ON comments FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.thread IS DISTINCT FROM NEW.thread
          OR OLD.question IS DISTINCT FROM NEW.question
          OR OLD.is_author IS DISTINCT FROM NEW.is_author)
    EXECUTE FUNCTION comment_counts_follow();
