-- Version 3: a reader's history beside the reply box (CommentStore.reader_history) in one
-- indexed lookup: each reader's comments by reader_key, newest first, and the author's replies
-- by the comment they answer. Plain columns, written with every comment from now on (an
-- expression index on the json record would have to parse it on every write, and json that
-- holds "\u0000" cannot be parsed into text). Existing rows are filled in from the record's
-- text: both values are ids or hex digests, and a key written by json.dumps cannot be forged
-- by a comment's text (its quotes are escaped there).

ALTER TABLE comments ADD COLUMN reader_key text COLLATE "C";
ALTER TABLE comments ADD COLUMN parent text COLLATE "C";
UPDATE comments SET
    reader_key = substring(record::text from '"reader_key":\s*"([^"\\]*)"'),
    parent = substring(record::text from '"parent":\s*"([^"\\]*)"');
CREATE INDEX comments_reader ON comments (reader_key, created DESC)
    WHERE NOT is_author AND reader_key IS NOT NULL;
CREATE INDEX comments_reply_parent ON comments (parent) WHERE is_author;
