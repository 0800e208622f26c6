import { sql } from 'drizzle-orm'
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core'

export const users = sqliteTable(
  'users',
  {
    id: text('id').primaryKey(),
    username: text('username').notNull(),
    fullName: text('full_name'),
    passwordHash: text('password_hash').notNull(),
    createdAt: integer('created_at').notNull(),
    /** Raised by "log out everywhere": tokens carrying an older version are refused. */
    tokenVersion: integer('token_version').notNull().default(0),
    /** When their last socket closed (written then, not while they are online). */
    lastSeenAt: integer('last_seen_at'),
  },
  (t) => [uniqueIndex('users_username_lower_idx').on(sql`lower(${t.username})`)],
)

/**
 * One per login (a refresh-token family). `currentJti` may be exchanged: each refresh replaces
 * it. The token it replaced (`previousJti`, at `rotatedAt`) is answered again with the same pair
 * for a short grace (REFRESH_REUSE_GRACE_SECONDS), for tabs that refresh at once; presenting any
 * other token of the family revokes the session.
 */
export const sessions = sqliteTable(
  'sessions',
  {
    id: text('id').primaryKey(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    currentJti: text('current_jti').notNull(),
    previousJti: text('previous_jti'),
    /** When `currentJti` was issued in place of `previousJti`: the time its tokens carry as `iat`. */
    rotatedAt: integer('rotated_at'),
    createdAt: integer('created_at').notNull(),
    revokedAt: integer('revoked_at'),
  },
  (t) => [index('sessions_user_idx').on(t.userId)],
)

export const conversations = sqliteTable(
  'conversations',
  {
    id: text('id').primaryKey(),
    title: text('title'),
    isGroup: integer('is_group', { mode: 'boolean' }).notNull(),
    /** For a 1-on-1: the two member ids, sorted and joined, so the pair can exist only once. */
    directKey: text('direct_key'),
    createdBy: text('created_by')
      .notNull()
      .references(() => users.id),
    createdAt: integer('created_at').notNull(),
    /** The seq of the newest message; the next message takes lastSeq + 1. */
    lastSeq: integer('last_seq').notNull().default(0),
    /** The event_seq of the newest change (a message, an edit, a reaction...); the next takes lastEventSeq + 1. */
    lastEventSeq: integer('last_event_seq').notNull().default(0),
    /**
     * The newest change past retention (EVENT_RETENTION_DAYS), whose row is gone: its event_seq
     * and after_seq. The stream can be replayed only after it; the events before are gone.
     */
    prunedEventSeq: integer('pruned_event_seq').notNull().default(0),
    prunedAfterSeq: integer('pruned_after_seq').notNull().default(0),
    lastMessageAt: integer('last_message_at'),
  },
  (t) => [uniqueIndex('conversations_direct_key_idx').on(t.directKey)],
)

export const conversationMembers = sqliteTable(
  'conversation_members',
  {
    conversationId: text('conversation_id')
      .notNull()
      .references(() => conversations.id, { onDelete: 'cascade' }),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    joinedAt: integer('joined_at').notNull(),
    /**
     * The conversation's latest activity (its newest message, or its creation) to the whole second,
     * copied onto each member's row so that one user's conversations can be read in that order
     * from an index, a page at a time. Written with the messages, in the same transaction, at most
     * once per conversation per batch and per second (messages/store.ts): every write moves one
     * index entry per member.
     */
    lastActivityAt: integer('last_activity_at').notNull().default(0),
    /** The seq of the newest message this member has read; it only moves forward. */
    lastReadSeq: integer('last_read_seq').notNull().default(0),
  },
  (t) => [
    primaryKey({ columns: [t.conversationId, t.userId] }),
    // Also serves every lookup by user_id alone (its prefix), as the user_id index it replaced did.
    index('conversation_members_user_activity_idx').on(t.userId, t.lastActivityAt, t.conversationId),
  ],
)

export const messages = sqliteTable(
  'messages',
  {
    id: text('id').primaryKey(),
    conversationId: text('conversation_id')
      .notNull()
      .references(() => conversations.id, { onDelete: 'cascade' }),
    seq: integer('seq').notNull(),
    senderId: text('sender_id')
      .notNull()
      .references(() => users.id),
    /**
     * The client's idempotency key, unique per sender. Indexed key first: time-ordered keys
     * (UUIDv7, as our clients send) then land on the index's last pages, where a batch shares a
     * few, instead of one random page per message under its sender's other keys (bench/).
     */
    messageId: text('message_id').notNull(),
    /** Empty once the message is deleted: the text is erased, not hidden. */
    content: text('content').notNull(),
    createdAt: integer('created_at').notNull(),
    /** When its sender last changed its content. */
    editedAt: integer('edited_at'),
    /** When it was deleted: it keeps its place and seq, without content. */
    deletedAt: integer('deleted_at'),
    /** The id of the message it answers, in the same conversation. */
    replyTo: text('reply_to'),
    /**
     * Its reactions as the JSON its `reactions` field shows ([{"emoji","user_ids"}], null for none),
     * rewritten from the reactions table in the transaction that changes them: a page of history
     * reads it as it is, with no aggregate per message.
     */
    reactions: text('reactions'),
  },
  (t) => [
    uniqueIndex('messages_conversation_seq_idx').on(t.conversationId, t.seq),
    uniqueIndex('messages_message_id_sender_idx').on(t.messageId, t.senderId),
  ],
)

/** One person's reaction with one emoji to one message; gone with the message. */
export const reactions = sqliteTable(
  'reactions',
  {
    messageId: text('message_id')
      .notNull()
      .references(() => messages.id, { onDelete: 'cascade' }),
    emoji: text('emoji').notNull(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.messageId, t.emoji, t.userId] })],
)

/**
 * Each conversation's change stream is numbered 1, 2, 3, … by event_seq in commit order: every
 * message, edit, deletion, reaction, title and member change. The rows here are every change but
 * a message being sent: each records the conversation's last_seq when it happened (after_seq), and
 * so a message's event_seq follows from its seq without being stored (the last change before it,
 * plus how many messages came since: messages/events.ts), and sending one writes nothing more
 * than before. A change that concerns a message refers to it (message_id) rather than copying it:
 * a replay shows the message as it is now, and a deletion erases its text in one place. `data`
 * holds the little else one needs (an emoji, a title, a member), as JSON.
 */
export const conversationEvents = sqliteTable(
  'conversation_events',
  {
    conversationId: text('conversation_id')
      .notNull()
      .references(() => conversations.id, { onDelete: 'cascade' }),
    eventSeq: integer('event_seq').notNull(),
    afterSeq: integer('after_seq').notNull(),
    type: text('type').notNull(),
    messageId: text('message_id'),
    /** Who made the change. */
    userId: text('user_id'),
    data: text('data'),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.conversationId, t.eventSeq] }), index('conversation_events_created_idx').on(t.createdAt)],
)

/**
 * One row, rewritten by every readiness probe (src/db/storage.ts): a committed write to the file
 * is the only proof that the database can take one.
 */
export const readiness = sqliteTable('readiness', {
  id: integer('id').primaryKey(),
  checkedAt: integer('checked_at').notNull(),
})

export type UserRow = typeof users.$inferSelect
export type ConversationRow = typeof conversations.$inferSelect
export type MessageRow = typeof messages.$inferSelect
