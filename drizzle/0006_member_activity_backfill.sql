-- Custom SQL migration file, put your code below! --
-- Each member row takes its conversation's activity: the newest message, or the creation.
UPDATE `conversation_members` SET `last_activity_at` = (
	SELECT coalesce(`last_message_at`, `created_at`) FROM `conversations` WHERE `conversations`.`id` = `conversation_members`.`conversation_id`
);
