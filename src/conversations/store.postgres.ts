import { and, asc, desc, eq, inArray, sql } from 'drizzle-orm'
import type { PostgresDb } from '../db/postgres/connection'
import { conversationMembers, conversations, users } from '../db/postgres/schema'
import type { ConversationStore } from './store'

const MEMBER = { id: users.id, username: users.username, fullName: users.fullName }
const CONVERSATION = {
  id: conversations.id,
  title: conversations.title,
  isGroup: conversations.isGroup,
  directKey: conversations.directKey,
  createdBy: conversations.createdBy,
  createdAt: conversations.createdAt,
  lastSeq: conversations.lastSeq,
  lastMessageAt: conversations.lastMessageAt,
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
        .select({ conversation: CONVERSATION, activity: conversationMembers.lastActivityAt })
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
        .select({ id: conversationMembers.conversationId, lastSeq: conversations.lastSeq })
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
  }
}
