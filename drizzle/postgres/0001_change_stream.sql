CREATE TABLE "conversation_events" (
	"conversation_id" text COLLATE "C" NOT NULL,
	"event_seq" bigint NOT NULL,
	"after_seq" bigint NOT NULL,
	"type" text COLLATE "C" NOT NULL,
	"message_id" text COLLATE "C",
	"user_id" text COLLATE "C",
	"data" text COLLATE "C",
	"created_at" bigint NOT NULL,
	CONSTRAINT "conversation_events_conversation_id_event_seq_pk" PRIMARY KEY("conversation_id","event_seq")
);
--> statement-breakpoint
CREATE TABLE "reactions" (
	"message_id" text COLLATE "C" NOT NULL,
	"emoji" text COLLATE "C" NOT NULL,
	"user_id" text COLLATE "C" NOT NULL,
	"created_at" bigint NOT NULL,
	CONSTRAINT "reactions_message_id_emoji_user_id_pk" PRIMARY KEY("message_id","emoji","user_id")
);
--> statement-breakpoint
ALTER TABLE "conversations" ADD COLUMN "last_event_seq" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "conversations" ADD COLUMN "pruned_event_seq" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "conversations" ADD COLUMN "pruned_after_seq" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "edited_at" bigint;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "deleted_at" bigint;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "reply_to" text COLLATE "C";--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "reactions" text COLLATE "C";--> statement-breakpoint
ALTER TABLE "conversation_events" ADD CONSTRAINT "conversation_events_conversation_id_conversations_id_fk" FOREIGN KEY ("conversation_id") REFERENCES "public"."conversations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "reactions" ADD CONSTRAINT "reactions_message_id_messages_id_fk" FOREIGN KEY ("message_id") REFERENCES "public"."messages"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "reactions" ADD CONSTRAINT "reactions_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "conversation_events_created_idx" ON "conversation_events" USING btree ("created_at");