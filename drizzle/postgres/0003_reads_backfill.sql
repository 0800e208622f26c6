-- Custom SQL migration file, put your code below! --
-- Members who were there before read positions existed have read what was there: an upgrade
-- must not mark every old message unread.
UPDATE "conversation_members" SET "last_read_seq" = "conversations"."last_seq"
	FROM "conversations" WHERE "conversations"."id" = "conversation_members"."conversation_id";
