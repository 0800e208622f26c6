-- Custom SQL migration file, put your code below! --
-- Each member row takes its conversation's activity, to the whole second (as messages/store.ts
-- writes it): the newest message, or the creation.
UPDATE `conversation_members` SET `last_activity_at` = (
	SELECT coalesce(`last_message_at`, `created_at`) / 1000 * 1000 FROM `conversations` WHERE `conversations`.`id` = `conversation_members`.`conversation_id`
);
