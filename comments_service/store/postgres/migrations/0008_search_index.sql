-- Version 8: the moderation search (find_comments with a text) finds a rare word without
-- reading every comment (issue 19).
--
-- pg_trgm's GIN indexes on the folded body and name let `LIKE '%needle%'` read only the rows
-- holding every trigram of a needle of three characters or more (then checked, as before,
-- for the exact substring). A common word needs no index: the page is read newest first
-- through comments_newest, and the matches are counted only up to what the page shows.
--
-- An extension belongs to the whole database, not to one schema: it is created in the schema
-- public, unless the database has it already, and named with its schema here, so that every
-- schema's index finds it whatever the search_path. Creating it needs a superuser or, as
-- pg_trgm is a trusted extension, a user with the CREATE privilege on the database (its
-- owner has it). The lock makes two schemas of one database migrating at once take turns.

SELECT pg_advisory_xact_lock(hashtext('tellmemore.pg_trgm'));
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

DO $$
DECLARE
    trgm text := (SELECT extnamespace::regnamespace::text FROM pg_extension
                  WHERE extname = 'pg_trgm');
BEGIN
    EXECUTE format('CREATE INDEX comments_body_search ON comments'
                   ' USING gin (body_folded %s.gin_trgm_ops)', trgm);
    EXECUTE format('CREATE INDEX comments_name_search ON comments'
                   ' USING gin (name_folded %s.gin_trgm_ops)', trgm);
END
$$;
