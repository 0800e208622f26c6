import { asc, eq, inArray, ne, sql } from 'drizzle-orm'
import type { Db } from '../db/client'
import { users } from '../db/schema'
import type { UserStore } from './store'

const isUniqueViolation = (error: unknown) => error instanceof Error && /UNIQUE constraint failed/.test(error.message)

const PUBLIC_COLUMNS = { id: users.id, username: users.username, fullName: users.fullName }

export function sqliteUserStore(db: Db): UserStore {
  // Prepared once: building the query and compiling it was about half of a call.
  const everyoneExcept = db
    .select({ ...PUBLIC_COLUMNS, lastSeenAt: users.lastSeenAt })
    .from(users)
    .where(ne(users.id, sql.placeholder('id')))
    .orderBy(asc(sql`lower(${users.username})`))
    .prepare()
  return {
    async create(user) {
      try {
        const [row] = db.insert(users).values(user).returning(PUBLIC_COLUMNS).all()
        return row!
      } catch (error) {
        if (isUniqueViolation(error)) return 'taken'
        throw error
      }
    },
    async byId(id) {
      return db.select(PUBLIC_COLUMNS).from(users).where(eq(users.id, id)).get()
    },
    async credentialsByUsername(username) {
      return db
        .select({ ...PUBLIC_COLUMNS, passwordHash: users.passwordHash })
        .from(users)
        .where(sql`lower(${users.username}) = lower(${username})`)
        .get()
    },
    async byIds(ids) {
      if (ids.length === 0) return []
      return db.select(PUBLIC_COLUMNS).from(users).where(inArray(users.id, [...ids])).all()
    },
    async byLowerUsernames(usernames) {
      if (usernames.length === 0) return []
      return db.select(PUBLIC_COLUMNS).from(users).where(inArray(sql`lower(${users.username})`, [...usernames])).all()
    },
    async setLastSeen(id, at) {
      await db.update(users).set({ lastSeenAt: at }).where(eq(users.id, id)).run()
    },
    async everyoneExcept(id) {
      return everyoneExcept.all({ id })
    },
  }
}
