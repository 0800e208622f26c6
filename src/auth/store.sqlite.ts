import { and, eq, isNull, sql } from 'drizzle-orm'
import type { Db } from '../db/client'
import { sessions, users } from '../db/schema'
import type { AuthStore } from './store'

export function sqliteAuthStore(db: Db): AuthStore {
  // Prepared once: every authenticated request that misses the session cache runs it.
  const sessionLookup = db
    .select({
      user: { id: users.id, username: users.username, fullName: users.fullName, tokenVersion: users.tokenVersion },
      revokedAt: sessions.revokedAt,
      currentJti: sessions.currentJti,
      previousJti: sessions.previousJti,
      rotatedAt: sessions.rotatedAt,
    })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(and(eq(sessions.id, sql.placeholder('sessionId')), eq(sessions.userId, sql.placeholder('userId'))))
    .prepare()
  return {
    async tokenVersion(userId) {
      return db.select({ version: users.tokenVersion }).from(users).where(eq(users.id, userId)).get()?.version
    },
    async openSession(session) {
      db.insert(sessions).values(session).run()
    },
    async session(sessionId, userId) {
      return sessionLookup.get({ sessionId, userId })
    },
    async rotate(sessionId, fromJti, to) {
      const rotated = db
        .update(sessions)
        .set({ currentJti: to.jti, previousJti: fromJti, rotatedAt: to.at })
        .where(and(eq(sessions.id, sessionId), eq(sessions.currentJti, fromJti), isNull(sessions.revokedAt)))
        .returning({ id: sessions.id })
        .all()
      return rotated.length === 1
    },
    async endSession(sessionId, at) {
      db.update(sessions)
        .set({ revokedAt: at })
        .where(and(eq(sessions.id, sessionId), isNull(sessions.revokedAt)))
        .run()
    },
    async endAllSessions(userId, at) {
      db.transaction((tx) => {
        tx.update(users)
          .set({ tokenVersion: sql`${users.tokenVersion} + 1` })
          .where(eq(users.id, userId))
          .run()
        tx.update(sessions)
          .set({ revokedAt: at })
          .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt)))
          .run()
      })
    },
  }
}
