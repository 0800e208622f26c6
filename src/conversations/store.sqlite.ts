import { and, desc, eq, gt, lte, ne, sql } from 'drizzle-orm'
import { alias } from 'drizzle-orm/sqlite-core'
import { perDatabase, type Db } from '../db/client'
import { conversationEvents, conversationMembers, conversations, users } from '../db/schema'
import type { ConversationStore, NewChange } from './store'

/**
 * Every read is prepared once: building a Drizzle query and having SQLite compile it was most of a
 * call, and on a socket's open most of the garbage an upgrade left behind (bench/scenarios/memory.ts).
 */
export function sqliteConversationStore(db: Db): ConversationStore {
  const member = { id: users.id, username: users.username, fullName: users.fullName }
  const others = alias(conversationMembers, 'others')
  const lookups = {
    // A variable number of conversations' members, in one statement: the ids go in as a JSON array.
    // Insertion order (rowid): the creator first, then the members as they were given.
    membersOfEach: db
      .select({ conversationId: conversationMembers.conversationId, ...member })
      .from(conversationMembers)
      .innerJoin(users, eq(users.id, conversationMembers.userId))
      .where(sql`${conversationMembers.conversationId} IN (SELECT value FROM json_each(${sql.placeholder('ids')}))`)
      .orderBy(sql`${conversationMembers}.rowid`)
      .prepare(),
    membersOf: db
      .select(member)
      .from(conversationMembers)
      .innerJoin(users, eq(users.id, conversationMembers.userId))
      .where(eq(conversationMembers.conversationId, sql.placeholder('conversationId')))
      .orderBy(sql`${conversationMembers}.rowid`)
      .prepare(),
    // A range of the user's rows in the (user_id, last_activity_at, conversation_id) index, read
    // backwards (tests/conversations/query-plan.test.ts).
    activeOf: db
      .select({ conversation: conversations, activity: conversationMembers.lastActivityAt, lastReadSeq: conversationMembers.lastReadSeq, unreadCount: UNREAD })
      .from(conversationMembers)
      .innerJoin(conversations, eq(conversations.id, conversationMembers.conversationId))
      .where(
        and(
          eq(conversationMembers.userId, sql.placeholder('userId')),
          sql`(${conversationMembers.lastActivityAt}, ${conversationMembers.conversationId}) < (${sql.placeholder('at')}, ${sql.placeholder('id')})`,
        ),
      )
      .orderBy(desc(conversationMembers.lastActivityAt), desc(conversationMembers.conversationId))
      .limit(sql.placeholder('limit'))
      .prepare(),
    pruned: db
      .select({ eventSeq: conversations.prunedEventSeq, afterSeq: conversations.prunedAfterSeq })
      .from(conversations)
      .where(eq(conversations.id, sql.placeholder('conversationId')))
      .prepare(),
    changeBase: db
      .select({ eventSeq: conversationEvents.eventSeq, afterSeq: conversationEvents.afterSeq })
      .from(conversationEvents)
      .where(and(eq(conversationEvents.conversationId, sql.placeholder('conversationId')), lte(conversationEvents.eventSeq, sql.placeholder('after'))))
      .orderBy(desc(conversationEvents.eventSeq))
      .limit(1)
      .prepare(),
    changes: db
      .select({
        eventSeq: conversationEvents.eventSeq,
        afterSeq: conversationEvents.afterSeq,
        type: conversationEvents.type,
        messageId: conversationEvents.messageId,
        userId: conversationEvents.userId,
        data: conversationEvents.data,
        createdAt: conversationEvents.createdAt,
      })
      .from(conversationEvents)
      .where(
        and(
          eq(conversationEvents.conversationId, sql.placeholder('conversationId')),
          gt(conversationEvents.eventSeq, sql.placeholder('after')),
          lte(conversationEvents.eventSeq, sql.placeholder('upTo')),
        ),
      )
      .orderBy(conversationEvents.eventSeq)
      .limit(sql.placeholder('limit'))
      .prepare(),
    positionsOf: db
      .select({ id: conversationMembers.conversationId, lastEventSeq: conversations.lastEventSeq })
      .from(conversationMembers)
      .innerJoin(conversations, eq(conversations.id, conversationMembers.conversationId))
      .where(eq(conversationMembers.userId, sql.placeholder('userId')))
      .prepare(),
    member: db
      .select({ userId: conversationMembers.userId })
      .from(conversationMembers)
      .where(and(eq(conversationMembers.conversationId, sql.placeholder('conversationId')), eq(conversationMembers.userId, sql.placeholder('userId'))))
      .prepare(),
    conversation: db.select().from(conversations).where(eq(conversations.id, sql.placeholder('id'))).prepare(),
    // The user's rows from the user_id index, each conversation's members from the primary key.
    coMembers: db
      .selectDistinct({ id: others.userId })
      .from(conversationMembers)
      .innerJoin(others, eq(others.conversationId, conversationMembers.conversationId))
      .where(and(eq(conversationMembers.userId, sql.placeholder('userId')), ne(others.userId, sql.placeholder('userId'))))
      .prepare(),
    unreadCounts: db
      .select({ userId: conversationMembers.userId, unreadCount: UNREAD })
      .from(conversationMembers)
      .where(
        and(
          eq(conversationMembers.conversationId, sql.placeholder('conversationId')),
          sql`${conversationMembers.userId} IN (SELECT value FROM json_each(${sql.placeholder('userIds')}))`,
        ),
      )
      .prepare(),
    reads: db
      .select({ userId: conversationMembers.userId, seq: conversationMembers.lastReadSeq })
      .from(conversationMembers)
      .where(eq(conversationMembers.conversationId, sql.placeholder('conversationId')))
      .orderBy(sql`${conversationMembers}.rowid`)
      .prepare(),
  }
  return {
    async create({ memberIds, activityAt, ...conversation }) {
      return db.transaction(
        (tx) => {
          const [inserted] = tx.insert(conversations).values(conversation).onConflictDoNothing({ target: conversations.directKey }).returning().all()
          if (!inserted) {
            // The unique direct key held: this pair already has its 1-on-1.
            return { row: tx.select().from(conversations).where(eq(conversations.directKey, conversation.directKey!)).get()!, created: false }
          }
          tx.insert(conversationMembers)
            .values(memberIds.map((userId) => ({ conversationId: inserted.id, userId, joinedAt: conversation.createdAt, lastActivityAt: activityAt })))
            .run()
          return { row: inserted, created: true }
        },
        { behavior: 'immediate' },
      )
    },
    async byId(id) {
      return lookups.conversation.get({ id })
    },
    async membersOfEach(ids) {
      if (ids.length === 0) return []
      return lookups.membersOfEach.all({ ids: JSON.stringify(ids) })
    },
    async membersOf(conversationId) {
      return lookups.membersOf.all({ conversationId })
    },
    async activeOf(userId, after, limit) {
      return lookups.activeOf.all({ userId, at: after.at, id: after.id, limit })
    },
    async positionsOf(userId) {
      return lookups.positionsOf.all({ userId })
    },
    async isMember(conversationId, userId) {
      return lookups.member.get({ conversationId, userId }) !== undefined
    },
    async changes(conversationId, after, upTo, limit) {
      const floor = lookups.pruned.get({ conversationId })
      if (!floor || after < floor.eventSeq) return 'pruned'
      const base = lookups.changeBase.get({ conversationId, after }) ?? floor
      return { base, rows: lookups.changes.all({ conversationId, after, upTo, limit }) }
    },
    async addMembers(conversationId, userIds, by, at) {
      const statements = groupStatements(db)
      return db.transaction(
        () => {
          const added: Array<{ userId: string; eventSeq: number }> = []
          for (const userId of userIds) {
            if (statements.addMember.run({ conversationId, userId, at }).changes === 0) continue
            const eventSeq = recordChange(db, { conversationId, type: 'member_added', messageId: null, userId: by, data: JSON.stringify({ user_id: userId }), createdAt: at })
            added.push({ userId, eventSeq })
          }
          return added
        },
        { behavior: 'immediate' },
      )
    },
    async removeMember(conversationId, userId, by, at) {
      const statements = groupStatements(db)
      return db.transaction(
        () => {
          if (statements.removeMember.run({ conversationId, userId }).changes === 0) return null
          return recordChange(db, { conversationId, type: 'member_removed', messageId: null, userId: by, data: JSON.stringify({ user_id: userId }), createdAt: at })
        },
        { behavior: 'immediate' },
      )
    },
    async markRead(conversationId, userId, seq, at) {
      const statements = groupStatements(db)
      return db.transaction(
        () => {
          const moved = statements.markRead.get({ conversationId, userId, seq })
          if (!moved) return null
          const eventSeq = recordChange(db, { conversationId, type: 'read', messageId: null, userId, data: JSON.stringify({ seq: moved.seq }), createdAt: at })
          return { seq: moved.seq, eventSeq }
        },
        { behavior: 'immediate' },
      )
    },
    async reads(conversationId) {
      return lookups.reads.all({ conversationId })
    },
    async unreadCounts(conversationId, userIds) {
      if (userIds.length === 0) return []
      return lookups.unreadCounts.all({ conversationId, userIds: JSON.stringify(userIds) })
    },
    async rename(conversationId, title, by, at) {
      const statements = groupStatements(db)
      return db.transaction(
        () => {
          if (statements.rename.run({ conversationId, title }).changes === 0) return null
          return recordChange(db, { conversationId, type: 'conversation_updated', messageId: null, userId: by, data: JSON.stringify({ title }), createdAt: at })
        },
        { behavior: 'immediate' },
      )
    },
    async coMembersOf(userId) {
      return lookups.coMembers.all({ userId }).map((row) => row.id)
    },
    async pruneChanges(cutoff) {
      return db.transaction(
        () => {
          db.$client.prepare(PRUNE_FLOORS).run({ cutoff })
          return db.$client.prepare(PRUNE_ROWS).run().changes
        },
        { behavior: 'immediate' },
      )
    },
  }
}

// Each conversation with a row older than the cutoff stops at the newest such row (never going
// back); then every row at or below a conversation's stop goes.
const PRUNE_FLOORS = `UPDATE conversations SET (pruned_event_seq, pruned_after_seq) = (
    SELECT e.event_seq, e.after_seq FROM conversation_events AS e
    WHERE e.conversation_id = conversations.id AND e.created_at < $cutoff ORDER BY e.event_seq DESC LIMIT 1)
  WHERE id IN (SELECT conversation_id FROM conversation_events WHERE created_at < $cutoff)
    AND pruned_event_seq < (SELECT max(event_seq) FROM conversation_events AS e WHERE e.conversation_id = conversations.id AND e.created_at < $cutoff)`
const PRUNE_ROWS = `DELETE FROM conversation_events WHERE event_seq <= (SELECT pruned_event_seq FROM conversations AS c WHERE c.id = conversation_events.conversation_id)`

/**
 * A member's unread count, beside their row: the messages after their read position that others
 * sent and that are not deleted, counted from the (conversation_id, seq) index.
 */
const UNREAD = sql<number>`(SELECT count(*) FROM messages AS m WHERE m.conversation_id = conversation_members.conversation_id
  AND m.seq > conversation_members.last_read_seq AND m.sender_id <> conversation_members.user_id AND m.deleted_at IS NULL)`

const groupStatements = perDatabase((db) => ({
  // A new member's row is at the conversation's current activity (its newest message, or its
  // creation, to the second), where it stands in everyone's list; what was said before they came
  // is history to them, not unread.
  addMember: db.$client.prepare<never, { conversationId: string; userId: string; at: number }>(
    `INSERT INTO conversation_members (conversation_id, user_id, joined_at, last_activity_at, last_read_seq)
       SELECT id, $userId, $at, (coalesce(last_message_at, created_at) / 1000) * 1000, last_seq FROM conversations WHERE id = $conversationId
       ON CONFLICT DO NOTHING`,
  ),
  // Forward only, and never past the newest message: the seq it moved to, or nothing.
  markRead: db.$client.prepare<{ seq: number }, { conversationId: string; userId: string; seq: number }>(
    `UPDATE conversation_members SET last_read_seq = min($seq, (SELECT last_seq FROM conversations WHERE id = $conversationId))
       WHERE conversation_id = $conversationId AND user_id = $userId AND last_read_seq < min($seq, (SELECT last_seq FROM conversations WHERE id = $conversationId))
       RETURNING last_read_seq AS seq`,
  ),
  removeMember: db.$client.prepare<never, { conversationId: string; userId: string }>('DELETE FROM conversation_members WHERE conversation_id = $conversationId AND user_id = $userId'),
  rename: db.$client.prepare<never, { conversationId: string; title: string }>('UPDATE conversations SET title = $title WHERE id = $conversationId AND title IS NOT $title'),
}))

/**
 * Numbers a change with its conversation's next event_seq and records it, inside the caller's
 * transaction: the conversation's row is written first, so changes are numbered in commit order.
 */
export function recordChange(db: Db, change: NewChange): number {
  const statements = changeStatements(db)
  const numbered = statements.advance.get({ conversationId: change.conversationId })
  if (!numbered) throw new Error(`conversation ${change.conversationId} does not exist`)
  statements.insert.run({ ...change, ...numbered })
  return numbered.eventSeq
}

const changeStatements = perDatabase((db) => ({
  advance: db
    .update(conversations)
    .set({ lastEventSeq: sql`${conversations.lastEventSeq} + 1` })
    .where(eq(conversations.id, sql.placeholder('conversationId')))
    .returning({ eventSeq: conversations.lastEventSeq, afterSeq: conversations.lastSeq })
    .prepare(),
  insert: db
    .insert(conversationEvents)
    .values({
      conversationId: sql.placeholder('conversationId'),
      eventSeq: sql.placeholder('eventSeq'),
      afterSeq: sql.placeholder('afterSeq'),
      type: sql.placeholder('type'),
      messageId: sql.placeholder('messageId'),
      userId: sql.placeholder('userId'),
      data: sql.placeholder('data'),
      createdAt: sql.placeholder('createdAt'),
    })
    .prepare(),
}))
