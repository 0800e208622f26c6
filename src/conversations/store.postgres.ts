import { and, asc, desc, eq, gt, inArray, lte, ne, sql } from 'drizzle-orm'
import { alias } from 'drizzle-orm/pg-core'
import type postgres from 'postgres'
import type { PostgresDb } from '../db/postgres/connection'
import { conversationEvents, conversationMembers, conversations, users } from '../db/postgres/schema'
import type { ConversationStore, NewChange } from './store'

const MEMBER = { id: users.id, username: users.username, fullName: users.fullName }
const CONVERSATION = {
  id: conversations.id,
  title: conversations.title,
  isGroup: conversations.isGroup,
  directKey: conversations.directKey,
  createdBy: conversations.createdBy,
  createdAt: conversations.createdAt,
  lastSeq: conversations.lastSeq,
  lastEventSeq: conversations.lastEventSeq,
  lastMessageAt: conversations.lastMessageAt,
}

const CHANGE = {
  eventSeq: conversationEvents.eventSeq,
  afterSeq: conversationEvents.afterSeq,
  type: conversationEvents.type,
  messageId: conversationEvents.messageId,
  userId: conversationEvents.userId,
  data: conversationEvents.data,
  createdAt: conversationEvents.createdAt,
}

export function postgresConversationStore(db: PostgresDb): ConversationStore {
  return {
    async create({ memberIds, activityAt, ...conversation }) {
      return db.transaction(async (tx) => {
        // A racing twin of this 1-on-1 makes the insert wait for its commit, then do nothing; the
        // select after it (a statement of its own, under READ COMMITTED) then sees the twin.
        const [inserted] = await tx.insert(conversations).values(conversation).onConflictDoNothing({ target: conversations.directKey }).returning(CONVERSATION)
        if (!inserted) {
          const [existing] = await tx.select(CONVERSATION).from(conversations).where(eq(conversations.directKey, conversation.directKey!))
          return { row: existing!, created: false }
        }
        // One statement: the identity column numbers the rows in this order, the order members are listed in.
        await tx
          .insert(conversationMembers)
          .values(memberIds.map((userId) => ({ conversationId: inserted.id, userId, joinedAt: conversation.createdAt, lastActivityAt: activityAt })))
        return { row: inserted, created: true }
      })
    },
    async byId(id) {
      const [row] = await db.select(CONVERSATION).from(conversations).where(eq(conversations.id, id))
      return row
    },
    async membersOfEach(ids) {
      if (ids.length === 0) return []
      return db
        .select({ conversationId: conversationMembers.conversationId, ...MEMBER })
        .from(conversationMembers)
        .innerJoin(users, eq(users.id, conversationMembers.userId))
        .where(inArray(conversationMembers.conversationId, [...ids]))
        .orderBy(asc(conversationMembers.position))
    },
    async membersOf(conversationId) {
      return db
        .select(MEMBER)
        .from(conversationMembers)
        .innerJoin(users, eq(users.id, conversationMembers.userId))
        .where(eq(conversationMembers.conversationId, conversationId))
        .orderBy(asc(conversationMembers.position))
    },
    async activeOf(userId, after, limit) {
      // A range of the user's rows in the (user_id, last_activity_at, conversation_id) index, read backwards.
      return db
        .select({ conversation: CONVERSATION, activity: conversationMembers.lastActivityAt, lastReadSeq: conversationMembers.lastReadSeq, unreadCount: UNREAD })
        .from(conversationMembers)
        .innerJoin(conversations, eq(conversations.id, conversationMembers.conversationId))
        .where(
          and(
            eq(conversationMembers.userId, userId),
            sql`(${conversationMembers.lastActivityAt}, ${conversationMembers.conversationId}) < (${after.at}::bigint, ${after.id}::text COLLATE "C")`,
          ),
        )
        .orderBy(desc(conversationMembers.lastActivityAt), desc(conversationMembers.conversationId))
        .limit(limit)
    },
    async positionsOf(userId) {
      return db
        .select({ id: conversationMembers.conversationId, lastEventSeq: conversations.lastEventSeq })
        .from(conversationMembers)
        .innerJoin(conversations, eq(conversations.id, conversationMembers.conversationId))
        .where(eq(conversationMembers.userId, userId))
    },
    async isMember(conversationId, userId) {
      const rows = await db
        .select({ userId: conversationMembers.userId })
        .from(conversationMembers)
        .where(and(eq(conversationMembers.conversationId, conversationId), eq(conversationMembers.userId, userId)))
      return rows.length > 0
    },
    async changes(conversationId, after, upTo, limit) {
      const [floor] = await db
        .select({ eventSeq: conversations.prunedEventSeq, afterSeq: conversations.prunedAfterSeq })
        .from(conversations)
        .where(eq(conversations.id, conversationId))
      if (!floor || after < floor.eventSeq) return 'pruned'
      const [base] = await db
        .select({ eventSeq: conversationEvents.eventSeq, afterSeq: conversationEvents.afterSeq })
        .from(conversationEvents)
        .where(and(eq(conversationEvents.conversationId, conversationId), lte(conversationEvents.eventSeq, after)))
        .orderBy(desc(conversationEvents.eventSeq))
        .limit(1)
      const rows = await db
        .select(CHANGE)
        .from(conversationEvents)
        .where(and(eq(conversationEvents.conversationId, conversationId), gt(conversationEvents.eventSeq, after), lte(conversationEvents.eventSeq, upTo)))
        .orderBy(asc(conversationEvents.eventSeq))
        .limit(limit)
      return { base: base ?? floor, rows }
    },
    async addMembers(conversationId, userIds, by, at) {
      return db.$client.begin(async (tx) => {
        await tx.unsafe(LOCK_CONVERSATION, [conversationId], { prepare: true })
        const added: Array<{ userId: string; eventSeq: number }> = []
        for (const userId of userIds) {
          if ((await tx.unsafe(ADD_MEMBER, [conversationId, userId, at], { prepare: true })).count === 0) continue
          const eventSeq = await recordChange(tx, { conversationId, type: 'member_added', messageId: null, userId: by, data: JSON.stringify({ user_id: userId }), createdAt: at })
          added.push({ userId, eventSeq })
        }
        return added
      })
    },
    async removeMember(conversationId, userId, by, at) {
      return db.$client.begin(async (tx) => {
        await tx.unsafe(LOCK_CONVERSATION, [conversationId], { prepare: true })
        if ((await tx.unsafe(REMOVE_MEMBER, [conversationId, userId], { prepare: true })).count === 0) return null
        return recordChange(tx, { conversationId, type: 'member_removed', messageId: null, userId: by, data: JSON.stringify({ user_id: userId }), createdAt: at })
      })
    },
    async markRead(conversationId, userId, seq, at) {
      return db.$client.begin(async (tx) => {
        // The conversation's row first, as every change takes it (recordChange), then the member's.
        const [conversation] = await tx.unsafe<Array<{ lastSeq: number }>>(LOCK_FOR_READ, [conversationId], { prepare: true })
        if (!conversation) return null
        const to = Math.min(seq, conversation.lastSeq)
        if ((await tx.unsafe(MARK_READ, [conversationId, userId, to], { prepare: true })).count === 0) return null
        const eventSeq = await recordChange(tx, { conversationId, type: 'read', messageId: null, userId, data: JSON.stringify({ seq: to }), createdAt: at })
        return { seq: to, eventSeq }
      })
    },
    async reads(conversationId) {
      return db
        .select({ userId: conversationMembers.userId, seq: conversationMembers.lastReadSeq })
        .from(conversationMembers)
        .where(eq(conversationMembers.conversationId, conversationId))
        .orderBy(asc(conversationMembers.position))
    },
    async unreadCounts(conversationId, userIds) {
      if (userIds.length === 0) return []
      return db
        .select({ userId: conversationMembers.userId, unreadCount: UNREAD })
        .from(conversationMembers)
        .where(and(eq(conversationMembers.conversationId, conversationId), inArray(conversationMembers.userId, [...userIds])))
    },
    async rename(conversationId, title, by, at) {
      return db.$client.begin(async (tx) => {
        if ((await tx.unsafe(RENAME, [conversationId, title], { prepare: true })).count === 0) return null
        return recordChange(tx, { conversationId, type: 'conversation_updated', messageId: null, userId: by, data: JSON.stringify({ title }), createdAt: at })
      })
    },
    async coMembersOf(userId) {
      const others = alias(conversationMembers, 'others')
      const rows = await db
        .selectDistinct({ id: others.userId })
        .from(conversationMembers)
        .innerJoin(others, eq(others.conversationId, conversationMembers.conversationId))
        .where(and(eq(conversationMembers.userId, userId), ne(others.userId, userId)))
      return rows.map((row) => row.id)
    },
    async pruneChanges(cutoff) {
      return db.$client.begin(async (tx) => {
        await tx.unsafe(PRUNE_FLOORS, [cutoff])
        return (await tx.unsafe(PRUNE_ROWS)).count
      })
    },
  }
}

// As on SQLite (store.sqlite.ts): each conversation stops at its newest row older than the cutoff,
// never going back, then every row at or below its stop goes.
const PRUNE_FLOORS = `UPDATE conversations AS c SET pruned_event_seq = p.event_seq, pruned_after_seq = p.after_seq
  FROM (SELECT DISTINCT ON (conversation_id) conversation_id, event_seq, after_seq FROM conversation_events
        WHERE created_at < $1 ORDER BY conversation_id, event_seq DESC) AS p
  WHERE c.id = p.conversation_id AND c.pruned_event_seq < p.event_seq`
const PRUNE_ROWS = `DELETE FROM conversation_events AS e USING conversations AS c WHERE c.id = e.conversation_id AND e.event_seq <= c.pruned_event_seq`

// As on SQLite: a member's unread count, from the (conversation_id, seq) index.
const UNREAD = sql<number>`(SELECT count(*)::int FROM messages AS m WHERE m.conversation_id = conversation_members.conversation_id
  AND m.seq > conversation_members.last_read_seq AND m.sender_id <> conversation_members.user_id AND m.deleted_at IS NULL)`.mapWith(Number)

// As on SQLite: a new member's row at the conversation's current activity, to the second, having read what came before.
const ADD_MEMBER = `INSERT INTO conversation_members (conversation_id, user_id, joined_at, last_activity_at, last_read_seq)
  SELECT id, $2::text, $3::bigint, (coalesce(last_message_at, created_at) / 1000) * 1000, last_seq FROM conversations WHERE id = $1
  ON CONFLICT DO NOTHING`
const LOCK_FOR_READ = 'SELECT last_seq AS "lastSeq" FROM conversations WHERE id = $1 FOR UPDATE'
const MARK_READ = 'UPDATE conversation_members SET last_read_seq = $3 WHERE conversation_id = $1 AND user_id = $2 AND last_read_seq < $3'
// Taken first by every change to a group's members: a message batch holds the conversation's row
// while it moves its member rows, so this order (conversation, then members) is the batch's too.
const LOCK_CONVERSATION = 'SELECT id FROM conversations WHERE id = $1 FOR UPDATE'
const REMOVE_MEMBER = 'DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = $2'
const RENAME = 'UPDATE conversations SET title = $2 WHERE id = $1 AND title IS DISTINCT FROM $2'

const NUMBER_CHANGE = `UPDATE conversations SET last_event_seq = last_event_seq + 1 WHERE id = $1 RETURNING last_event_seq AS "eventSeq", last_seq AS "afterSeq"`
const INSERT_CHANGE = `INSERT INTO conversation_events (conversation_id, event_seq, after_seq, type, message_id, user_id, data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

/**
 * Numbers a change with its conversation's next event_seq and records it, inside the caller's
 * transaction: the conversation's row stays locked until it commits, so changes are numbered in
 * commit order, whichever node makes them.
 */
export async function recordChange(tx: postgres.TransactionSql, change: NewChange): Promise<number> {
  const [numbered] = await tx.unsafe<Array<{ eventSeq: number; afterSeq: number }>>(NUMBER_CHANGE, [change.conversationId], { prepare: true })
  if (!numbered) throw new Error(`conversation ${change.conversationId} does not exist`)
  const { conversationId, type, messageId, userId, data, createdAt } = change
  await tx.unsafe(INSERT_CHANGE, [conversationId, numbered.eventSeq, numbered.afterSeq, type, messageId, userId, data, createdAt], { prepare: true })
  return numbered.eventSeq
}
