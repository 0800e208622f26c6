DROP INDEX `conversation_members_user_idx`;--> statement-breakpoint
CREATE INDEX `conversation_members_user_activity_idx` ON `conversation_members` (`user_id`,`last_activity_at`,`conversation_id`);