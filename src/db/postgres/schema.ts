import { sql } from 'drizzle-orm'
import { bigint, boolean, customType, index, integer, pgTable, primaryKey, uniqueIndex } from 'drizzle-orm/pg-core'

/**
 * The PostgreSQL twin of ../schema.ts: the same tables, columns, indexes and foreign keys, so one
 * store's queries mean the same on either engine.
 *
 * Every text column collates as "C": SQLite compares text bytewise, and the stores page by row
 * comparisons such as `(last_activity_at, conversation_id) < ($1, $2)`, so both engines must order
 * ids and names byte for byte alike or a cursor handed out by one order skips or repeats rows in
 * the other. "C" also keeps lower() to ASCII letters, as SQLite's is, so the unique
 * lower(username) refuses the same names on both. Drizzle's pg-core has no collation option;
 * drizzle-kit writes a custom type's SQL as it is.
 */
const text = customType<{ data: string; driverData: string }>({ dataType: () => 'text COLLATE "C"' })

/** Epoch milliseconds and counters: past 32 bits, and within 2^53, so plain numbers in JavaScript. */
const bigintNumber = (name: string) => bigint(name, { mode: 'number' })

export const users = pgTable(
  'users',
  {
    id: text('id').primaryKey(),
    username: text('username').notNull(),
    fullName: text('full_name'),
    passwordHash: text('password_hash').notNull(),
    createdAt: bigintNumber('created_at').notNull(),
    /** Raised by "log out everywhere": tokens carrying an older version are refused. */
    tokenVersion: bigintNumber('token_version').notNull().default(0),
    /** When their last socket closed (written then, not while they are online). */
    lastSeenAt: bigintNumber('last_seen_at'),
  },
  (t) => [uniqueIndex('users_username_lower_idx').on(sql`lower(${t.username})`)],
)

/** One per login (a refresh-token family): see ../schema.ts. */
export const sessions = pgTable(
  'sessions',
  {
    id: text('id').primaryKey(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    currentJti: text('current_jti').notNull(),
    previousJti: text('previous_jti'),
    rotatedAt: bigintNumber('rotated_at'),
    createdAt: bigintNumber('created_at').notNull(),
    revokedAt: bigintNumber('revoked_at'),
  },
  (t) => [index('sessions_user_idx').on(t.userId)],
)

export const conversations = pgTable(
  'conversations',
  {
    id: text('id').primaryKey(),
    title: text('title'),
    isGroup: boolean('is_group').notNull(),
    /** For a 1-on-1: the two member ids, sorted and joined, so the pair can exist only once. */
    directKey: text('direct_key'),
    createdBy: text('created_by')
      .notNull()
      .references(() => users.id),
    createdAt: bigintNumber('created_at').notNull(),
    /** The seq of the newest message; the next message takes lastSeq + 1. */
    lastSeq: bigintNumber('last_seq').notNull().default(0),
    /** The event_seq of the newest change (a message, an edit, a reaction...); the next takes lastEventSeq + 1. */
    lastEventSeq: bigintNumber('last_event_seq').notNull().default(0),
    /**
     * The newest change past retention (EVENT_RETENTION_DAYS), whose row is gone: its event_seq
     * and after_seq. The stream can be replayed only after it; the events before are gone.
     */
    prunedEventSeq: bigintNumber('pruned_event_seq').notNull().default(0),
    prunedAfterSeq: bigintNumber('pruned_after_seq').notNull().default(0),
    lastMessageAt: bigintNumber('last_message_at'),
  },
  (t) => [uniqueIndex('conversations_direct_key_idx').on(t.directKey)],
)

export const conversationMembers = pgTable(
  'conversation_members',
  {
    conversationId: text('conversation_id')
      .notNull()
      .references(() => conversations.id, { onDelete: 'cascade' }),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    joinedAt: bigintNumber('joined_at').notNull(),
    /** The conversation's latest activity to the whole second, copied onto each member's row: see ../schema.ts. */
    lastActivityAt: bigintNumber('last_activity_at').notNull().default(0),
    /** The seq of the newest message this member has read; it only moves forward. */
    lastReadSeq: bigintNumber('last_read_seq').notNull().default(0),
    /** The order members were added in, which SQLite reads from its rowid. */
    position: bigintNumber('position').generatedAlwaysAsIdentity(),
  },
  (t) => [
    primaryKey({ columns: [t.conversationId, t.userId] }),
    index('conversation_members_user_activity_idx').on(t.userId, t.lastActivityAt, t.conversationId),
  ],
)

export const messages = pgTable(
  'messages',
  {
    id: text('id').primaryKey(),
    conversationId: text('conversation_id')
      .notNull()
      .references(() => conversations.id, { onDelete: 'cascade' }),
    seq: bigintNumber('seq').notNull(),
    senderId: text('sender_id')
      .notNull()
      .references(() => users.id),
    /** The client's idempotency key, unique per sender; indexed key first, as in ../schema.ts. */
    messageId: text('message_id').notNull(),
    /** Empty once the message is deleted: the text is erased, not hidden. */
    content: text('content').notNull(),
    createdAt: bigintNumber('created_at').notNull(),
    /** When its sender last changed its content. */
    editedAt: bigintNumber('edited_at'),
    /** When it was deleted: it keeps its place and seq, without content. */
    deletedAt: bigintNumber('deleted_at'),
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
export const reactions = pgTable(
  'reactions',
  {
    messageId: text('message_id')
      .notNull()
      .references(() => messages.id, { onDelete: 'cascade' }),
    emoji: text('emoji').notNull(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    createdAt: bigintNumber('created_at').notNull(),
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
export const conversationEvents = pgTable(
  'conversation_events',
  {
    conversationId: text('conversation_id')
      .notNull()
      .references(() => conversations.id, { onDelete: 'cascade' }),
    eventSeq: bigintNumber('event_seq').notNull(),
    afterSeq: bigintNumber('after_seq').notNull(),
    type: text('type').notNull(),
    messageId: text('message_id'),
    /** Who made the change. */
    userId: text('user_id'),
    data: text('data'),
    createdAt: bigintNumber('created_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.conversationId, t.eventSeq] }), index('conversation_events_created_idx').on(t.createdAt)],
)

/** One row, rewritten by every readiness probe: a committed write is the only proof the database takes one. */
export const readiness = pgTable('readiness', {
  id: integer('id').primaryKey(),
  checkedAt: bigintNumber('checked_at').notNull(),
})
