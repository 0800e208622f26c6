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
    content: text('content').notNull(),
    createdAt: bigintNumber('created_at').notNull(),
  },
  (t) => [
    uniqueIndex('messages_conversation_seq_idx').on(t.conversationId, t.seq),
    uniqueIndex('messages_message_id_sender_idx').on(t.messageId, t.senderId),
  ],
)

/** One row, rewritten by every readiness probe: a committed write is the only proof the database takes one. */
export const readiness = pgTable('readiness', {
  id: integer('id').primaryKey(),
  checkedAt: bigintNumber('checked_at').notNull(),
})
