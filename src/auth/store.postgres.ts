import { and, eq, isNull, sql } from 'drizzle-orm'
import type { PostgresDb } from '../db/postgres/connection'
import { sessions, users } from '../db/postgres/schema'
import type { AuthStore } from './store'

export function postgresAuthStore(db: PostgresDb): AuthStore {
  return {
    async tokenVersion(userId) {
      const [row] = await db.select({ version: users.tokenVersion }).from(users).where(eq(users.id, userId))
      return row?.version
    },
    async openSession(session) {
      await db.insert(sessions).values(session)
    },
    async session(sessionId, userId) {
      const [row] = await db
        .select({
          user: { id: users.id, username: users.username, fullName: users.fullName, tokenVersion: users.tokenVersion },
          revokedAt: sessions.revokedAt,
          currentJti: sessions.currentJti,
          previousJti: sessions.previousJti,
          rotatedAt: sessions.rotatedAt,
        })
        .from(sessions)
        .innerJoin(users, eq(users.id, sessions.userId))
        .where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId)))
      return row
    },
    async rotate(sessionId, fromJti, to) {
      const rotated = await db
        .update(sessions)
        .set({ currentJti: to.jti, previousJti: fromJti, rotatedAt: to.at })
        .where(and(eq(sessions.id, sessionId), eq(sessions.currentJti, fromJti), isNull(sessions.revokedAt)))
        .returning({ id: sessions.id })
      return rotated.length === 1
    },
    async endSession(sessionId, at) {
      await db
        .update(sessions)
        .set({ revokedAt: at })
        .where(and(eq(sessions.id, sessionId), isNull(sessions.revokedAt)))
    },
    async endAllSessions(userId, at) {
      await db.transaction(async (tx) => {
        await tx
          .update(users)
          .set({ tokenVersion: sql`${users.tokenVersion} + 1` })
          .where(eq(users.id, userId))
        await tx
          .update(sessions)
          .set({ revokedAt: at })
          .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt)))
      })
    },
  }
}
