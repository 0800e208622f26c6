import { asc, eq, inArray, ne, sql } from 'drizzle-orm'
import type { PostgresDb } from '../db/postgres/connection'
import { users } from '../db/postgres/schema'
import type { UserStore } from './store'

const PUBLIC_COLUMNS = { id: users.id, username: users.username, fullName: users.fullName }

export function postgresUserStore(db: PostgresDb): UserStore {
  return {
    async create(user) {
      // Any unique violation here is the username's (the id is new): nothing is stored, no error to read.
      const [row] = await db.insert(users).values(user).onConflictDoNothing().returning(PUBLIC_COLUMNS)
      return row ?? 'taken'
    },
    async byId(id) {
      const [row] = await db.select(PUBLIC_COLUMNS).from(users).where(eq(users.id, id))
      return row
    },
    async credentialsByUsername(username) {
      const [row] = await db
        .select({ ...PUBLIC_COLUMNS, passwordHash: users.passwordHash })
        .from(users)
        .where(sql`lower(${users.username}) = lower(${username})`)
      return row
    },
    async byIds(ids) {
      if (ids.length === 0) return []
      return db.select(PUBLIC_COLUMNS).from(users).where(inArray(users.id, [...ids]))
    },
    async byLowerUsernames(usernames) {
      if (usernames.length === 0) return []
      return db.select(PUBLIC_COLUMNS).from(users).where(inArray(sql`lower(${users.username})`, [...usernames]))
    },
    async setLastSeen(id, at) {
      await db.update(users).set({ lastSeenAt: at }).where(eq(users.id, id))
    },
    async everyoneExcept(id) {
      return db
        .select({ ...PUBLIC_COLUMNS, lastSeenAt: users.lastSeenAt })
        .from(users)
        .where(ne(users.id, id))
        .orderBy(asc(sql`lower(${users.username})`))
    },
  }
}
