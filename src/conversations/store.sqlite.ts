import { and, desc, eq, sql } from 'drizzle-orm'
import type { Db } from '../db/client'
import { conversationMembers, conversations, users } from '../db/schema'
import type { ConversationStore } from './store'

/**
 * Every read is prepared once: building a Drizzle query and having SQLite compile it was most of a
 * call, and on a socket's open most of the garbage an upgrade left behind (bench/scenarios/memory.ts).
 */
export function sqliteConversationStore(db: Db): ConversationStore {
  const member = { id: users.id, username: users.username, fullName: users.fullName }
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
      .select({ conversation: conversations, activity: conversationMembers.lastActivityAt })
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
    positionsOf: db
      .select({ id: conversationMembers.conversationId, lastSeq: conversations.lastSeq })
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
  }
}
