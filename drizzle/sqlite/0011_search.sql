-- Custom SQL migration file, put your code below! --
-- Search (issue 18): a full-text index of the messages' content, kept in step with it by triggers,
-- in the transaction that changes it. External content (the text lives once, in messages; the
-- index holds only its words), so a deletion erases the text in one place. Words are folded to
-- lower case without diacritics (café = cafe); prefixes of 2 and 3 characters have an index of
-- their own, so a short prefix query reads one list instead of merging every word it starts.
-- secure-delete: a deleted or edited message's words leave the index at once, not at a later merge.
CREATE VIRTUAL TABLE `messages_fts` USING fts5(
	content,
	content='messages',
	content_rowid='rowid',
	columnsize=0,
	tokenize='unicode61 remove_diacritics 2',
	prefix='2 3'
);
--> statement-breakpoint
INSERT INTO `messages_fts` (`messages_fts`, `rank`) VALUES ('secure-delete', 1);
--> statement-breakpoint
CREATE TRIGGER `messages_fts_insert` AFTER INSERT ON `messages` WHEN new.`content` <> '' BEGIN
	INSERT INTO `messages_fts` (`rowid`, `content`) VALUES (new.`rowid`, new.`content`);
END;
--> statement-breakpoint
CREATE TRIGGER `messages_fts_delete` AFTER DELETE ON `messages` WHEN old.`content` <> '' BEGIN
	INSERT INTO `messages_fts` (`messages_fts`, `rowid`, `content`) VALUES ('delete', old.`rowid`, old.`content`);
END;
--> statement-breakpoint
CREATE TRIGGER `messages_fts_update` AFTER UPDATE OF `content` ON `messages` WHEN old.`content` <> new.`content` BEGIN
	INSERT INTO `messages_fts` (`messages_fts`, `rowid`, `content`) SELECT 'delete', old.`rowid`, old.`content` WHERE old.`content` <> '';
	INSERT INTO `messages_fts` (`rowid`, `content`) SELECT new.`rowid`, new.`content` WHERE new.`content` <> '';
END;
--> statement-breakpoint
-- The messages already there (an upgrade): indexed from the content table as it is.
INSERT INTO `messages_fts` (`messages_fts`) VALUES ('rebuild');
