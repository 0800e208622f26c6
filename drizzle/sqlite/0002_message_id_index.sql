DROP INDEX `messages_sender_message_id_idx`;--> statement-breakpoint
CREATE UNIQUE INDEX `messages_message_id_sender_idx` ON `messages` (`message_id`,`sender_id`);