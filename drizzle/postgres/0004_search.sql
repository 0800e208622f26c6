-- Custom SQL migration file, put your code below! --
-- Search (issue 18): a GIN index of each message's words, as a text search configuration reads
-- them: split by PostgreSQL's parser, folded without diacritics (the unaccent dictionary: café =
-- cafe), then lower-cased; no stemming and no stop words, as on SQLite. `<` is read as a space:
-- a chat message is text, not HTML, and the parser would otherwise skip what looks like a tag (and
-- everything between <script> and </script>). The index is on an expression, so it is kept in
-- step by the statement that changes the content, and the text lives once. Building it indexes
-- the messages already there (an upgrade).
-- unaccent is a trusted extension (PostgreSQL 13 and later): the database's owner, or any role
-- with CREATE on it, may create it; no superuser is needed.
CREATE EXTENSION IF NOT EXISTS unaccent;
--> statement-breakpoint
CREATE TEXT SEARCH CONFIGURATION "pneumatic_search" (COPY = pg_catalog.simple);
--> statement-breakpoint
ALTER TEXT SEARCH CONFIGURATION "pneumatic_search"
	ALTER MAPPING FOR word, hword, hword_part, numword, numhword, hword_numpart WITH unaccent, simple;
--> statement-breakpoint
CREATE INDEX "messages_search_idx" ON "messages" USING gin (to_tsvector('pneumatic_search', replace("content", '<', ' ')));
