import { asc, eq, inArray, ne, sql } from 'drizzle-orm'
import { perDatabase, type Db } from '../db/client'
import { users, type UserRow } from '../db/schema'
import { Conflict } from '../shared/errors'
import { newId } from '../shared/ids'
import { now } from '../shared/time'
import type { User } from './model'

export const toUser = (row: Pick<UserRow, 'id' | 'username' | 'fullName'>): User => ({
  id: row.id,
  username: row.username,
  full_name: row.fullName,
})

/** A name to show for a user: the full name when they gave one, else the username. */
export const displayName = (user: User): string => user.full_name || user.username

const isUniqueViolation = (error: unknown) => error instanceof Error && /UNIQUE constraint failed/.test(error.message)

/** Stores a new user. Usernames are unique regardless of case. */
export function create(db: Db, input: { username: string; passwordHash: string; fullName: string | null }): User {
  try {
    const [row] = db
      .insert(users)
      .values({ id: newId(), username: input.username, fullName: input.fullName, passwordHash: input.passwordHash, createdAt: now() })
      .returning()
      .all()
    return toUser(row!)
  } catch (error) {
    if (isUniqueViolation(error)) throw new Conflict(`Username "${input.username}" is already taken`)
    throw error
  }
}

export function byId(db: Db, id: string): User | undefined {
  const row = db.select().from(users).where(eq(users.id, id)).get()
  return row && toUser(row)
}

/** The stored row, hash included: only for the login check. */
export function credentialsByUsername(db: Db, username: string): UserRow | undefined {
  return db
    .select()
    .from(users)
    .where(sql`lower(${users.username}) = lower(${username})`)
    .get()
}

export function byIds(db: Db, ids: readonly string[]): User[] {
  if (ids.length === 0) return []
  return db.select({ id: users.id, username: users.username, fullName: users.fullName }).from(users).where(inArray(users.id, [...ids])).all().map(toUser)
}

/** Users by username (any case), and the names that match nobody. */
export function byUsernames(db: Db, usernames: readonly string[]): { found: User[]; unknown: string[] } {
  const wanted = [...new Set(usernames.map((u) => u.toLowerCase()))]
  if (wanted.length === 0) return { found: [], unknown: [] }
  const found = db
    .select({ id: users.id, username: users.username, fullName: users.fullName })
    .from(users)
    .where(inArray(sql`lower(${users.username})`, wanted))
    .all()
    .map(toUser)
  const known = new Set(found.map((u) => u.username.toLowerCase()))
  return { found, unknown: usernames.filter((u) => !known.has(u.toLowerCase())) }
}

/** Everyone except the caller, by username. */
export function listExcept(db: Db, actor: User): User[] {
  return everyoneExcept(db).all({ id: actor.id }).map(toUser)
}

// Prepared once per database: building the query and compiling it was about half of a call.
const everyoneExcept = perDatabase((db) =>
  db
    .select({ id: users.id, username: users.username, fullName: users.fullName })
    .from(users)
    .where(ne(users.id, sql.placeholder('id')))
    .orderBy(asc(sql`lower(${users.username})`))
    .prepare(),
)
