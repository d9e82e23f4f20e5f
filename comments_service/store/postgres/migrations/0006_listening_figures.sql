-- Version 6: the listening figures (metrics page, `stats`, /api/listening) as SQL aggregates
-- over plain columns (store/postgres/listening.py), not by reading every record:
--   words         the comment's word count (metrics_inputs.word_count); NULL until counted.
--                 Python's Unicode word rule cannot be written in SQL exactly, so existing rows
--                 are counted by the store the first time the figures are asked for.
--   replied_at    a reader comment's time of first reply; reply_seconds its time to it
--   stock         an author's reply sent over the nudge's "generic" or "repeated" warning
--   individual    a replied reader comment with an individual reply, individual_at its time
--                 (kept by the store whenever the comment or a reply under it is written)
-- Existing rows are filled in from the record's text, as in 0003: the values are times and
-- warning names, and a key written by json.dumps cannot be forged by a comment's text.

ALTER TABLE comments ADD COLUMN words integer;
ALTER TABLE comments ADD COLUMN replied_at text COLLATE "C";
ALTER TABLE comments ADD COLUMN reply_seconds double precision;
ALTER TABLE comments ADD COLUMN stock boolean NOT NULL DEFAULT false;
ALTER TABLE comments ADD COLUMN individual boolean NOT NULL DEFAULT false;
ALTER TABLE comments ADD COLUMN individual_at text COLLATE "C";

UPDATE comments SET
    replied_at = CASE WHEN NOT is_author
                      THEN substring(record::text from '"replied_at":\s*"([^"\\]*)"') END,
    stock = is_author AND record::text ~ '"nudge_warnings":\s*\[[^\]]*"(generic|repeated)"';
UPDATE comments SET reply_seconds = greatest(0, extract(epoch FROM
        (replied_at::timestamptz - created::timestamptz)))::double precision
    WHERE NOT is_author AND state = 'replied' AND replied_at IS NOT NULL;

-- The rule of metrics.individual_reply_times; the store runs the same per comment
-- (listening.INDIVIDUAL).
WITH standing AS (
    SELECT r.parent AS id,
           (array_agg(r.stock ORDER BY r.created, r.seq))[1] AS first_stock,
           (array_agg(r.created ORDER BY r.created, r.seq))[1] AS first_created,
           min(r.created) FILTER (WHERE NOT r.stock) AS first_good
    FROM comments AS r
    WHERE r.is_author AND r.state = 'posted' AND r.parent IS NOT NULL
    GROUP BY r.parent)
UPDATE comments AS c SET
    individual = coalesce(f.first_stock, false) = false OR f.first_good IS NOT NULL,
    individual_at = CASE WHEN coalesce(f.first_stock, false) = false
                         THEN coalesce(c.replied_at, f.first_created) ELSE f.first_good END
FROM comments AS self LEFT JOIN standing AS f ON f.id = self.id
WHERE c.id = self.id AND NOT c.is_author AND c.state = 'replied';

-- Reader comments by group (index-only: every column the aggregate reads is in the index).
CREATE INDEX comments_listening ON comments (thread, question)
    INCLUDE (state, individual, words, reply_seconds)
    WHERE NOT is_author AND state IN ('awaiting_reply', 'replied');
-- The target window and the weekly counts: reader comments by time written.
CREATE INDEX comments_listening_created ON comments (created)
    INCLUDE (id, thread, individual, individual_at)
    WHERE NOT is_author AND state IN ('awaiting_reply', 'replied');
-- The weekly reply times: replied reader comments by time of first reply.
CREATE INDEX comments_listening_replied ON comments (replied_at) INCLUDE (reply_seconds)
    WHERE NOT is_author AND state = 'replied';
-- The author's words per thread.
CREATE INDEX comments_listening_author ON comments (thread) INCLUDE (words)
    WHERE is_author AND state = 'posted';
-- Spam and withdrawn reader comments, and the waiting ones by time (how many are due), counted
-- from the index alone.
CREATE INDEX comments_listening_left_out ON comments (state)
    WHERE NOT is_author AND state IN ('spam', 'withdrawn');
CREATE INDEX comments_listening_waiting ON comments (created)
    WHERE NOT is_author AND state = 'awaiting_reply';
-- Rows still to count (none once the store has counted them).
CREATE INDEX comments_words_uncounted ON comments (id) WHERE words IS NULL;
