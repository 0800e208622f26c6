import { describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import postgres from 'postgres'
import { ConfigError } from '../../src/config'
import { openPostgres, type PostgresHandle } from '../../src/db/postgres/connection'
import { conversationMembers, conversations, messages, users } from '../../src/db/postgres/schema'
import { freshDatabase, POSTGRES_ADMIN_URL, skipPostgresTests } from '../support/postgres'
import { rejection } from '../support/services'

const JOURNAL = join(import.meta.dir, '..', '..', 'drizzle', 'postgres', 'meta', '_journal.json')
const migrationCount = (JSON.parse(readFileSync(JOURNAL, 'utf8')) as { entries: unknown[] }).entries.length

/** The test server's URL with another user, password and database. */
function testServerUrl({ user = 'postgres', password = 'hunter2', database }: { user?: string; password?: string; database: string }): string {
  const url = new URL(POSTGRES_ADMIN_URL)
  url.username = user
  url.password = password
  url.pathname = `/${database}`
  return url.toString()
}

/** A TCP port on 127.0.0.1 where nothing listens: one the system just handed out and that was closed again. */
function closedPort(): number {
  const listener = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const port = listener.port
  listener.stop(true)
  return port
}

async function using<T>(handle: PostgresHandle, fn: (handle: PostgresHandle) => Promise<T>): Promise<T> {
  try {
    return await fn(handle)
  } finally {
    await handle.close()
  }
}

describe.skipIf(skipPostgresTests)('openPostgres on PostgreSQL', () => {
  test('on PostgreSQL, a fresh database gets every table, the migration journal, and bigint columns read as numbers', async () => {
    await using fresh = await freshDatabase()
    await using(await openPostgres(fresh.url, { poolSize: 2 }), async ({ sql, db }) => {
      const tables = await sql<{ tablename: string }[]>`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`
      expect(tables.map((t) => t.tablename)).toEqual(['conversation_events', 'conversation_members', 'conversations', 'messages', 'reactions', 'readiness', 'sessions', 'users'])
      expect(await sql`SELECT count(*) AS applied FROM drizzle.__drizzle_migrations`).toEqual([{ applied: migrationCount }] as never)
      await db.insert(users).values({ id: 'u1', username: 'ada', passwordHash: 'x', createdAt: 1_700_000_000_123 })
      const [row] = await sql`SELECT created_at, token_version FROM users`
      expect(row).toEqual({ created_at: 1_700_000_000_123, token_version: 0 })
      expect((await db.select().from(users))[0]!.createdAt).toBe(1_700_000_000_123)
    })
  })

  test('on PostgreSQL, four nodes opening the same fresh database at once all succeed and migrate it once', async () => {
    await using fresh = await freshDatabase()
    const handles = await Promise.all(Array.from({ length: 4 }, () => openPostgres(fresh.url, { poolSize: 1 })))
    try {
      const { sql } = handles[0]!
      expect(await sql`SELECT count(*) AS applied FROM drizzle.__drizzle_migrations`).toEqual([{ applied: migrationCount }] as never)
      expect(await sql`SELECT count(*) AS tables FROM pg_tables WHERE schemaname = 'public'`).toEqual([{ tables: 8 }] as never)
      for (const { sql } of handles) expect(await sql`SELECT count(*) AS users FROM users`).toEqual([{ users: 0 }] as never)
    } finally {
      await Promise.all(handles.map((h) => h.close()))
    }
  })

  test('on PostgreSQL, opening an already migrated database applies nothing again and keeps its rows', async () => {
    await using fresh = await freshDatabase()
    await using(await openPostgres(fresh.url, { poolSize: 1 }), ({ db }) => db.insert(users).values({ id: 'u1', username: 'ada', passwordHash: 'x', createdAt: 1 }))
    await using(await openPostgres(fresh.url, { poolSize: 1 }), async ({ sql }) => {
      expect(await sql`SELECT count(*) AS applied FROM drizzle.__drizzle_migrations`).toEqual([{ applied: migrationCount }] as never)
      expect(await sql`SELECT id, username FROM users`).toEqual([{ id: 'u1', username: 'ada' }] as never)
    })
  })
})

describe.skipIf(skipPostgresTests)('the PostgreSQL schema', () => {
  /** The name of the constraint or unique index a statement broke (SQLSTATE 23505). */
  async function violated(statement: Promise<unknown>): Promise<string> {
    const error = (await rejection(statement)) as { code?: string; constraint_name?: string; cause?: { code?: string; constraint_name?: string } }
    const driverError = error.cause ?? error // drizzle wraps the driver's error in a DrizzleQueryError
    expect(driverError.code).toBe('23505')
    return driverError.constraint_name!
  }

  test('on PostgreSQL, each unique constraint refuses a duplicate: lower(username), direct_key, (conversation_id, seq), (message_id, sender_id)', async () => {
    await using fresh = await freshDatabase()
    await using(await openPostgres(fresh.url, { poolSize: 1 }), async ({ db }) => {
      await db.insert(users).values([
        { id: 'u1', username: 'Ada', passwordHash: 'x', createdAt: 1 },
        { id: 'u2', username: 'bob', passwordHash: 'x', createdAt: 1 },
      ])
      expect(await violated(db.insert(users).values({ id: 'u3', username: 'aDA', passwordHash: 'x', createdAt: 1 }))).toBe('users_username_lower_idx')

      await db.insert(conversations).values({ id: 'c1', isGroup: false, directKey: 'u1:u2', createdBy: 'u1', createdAt: 1 })
      expect(await violated(db.insert(conversations).values({ id: 'c2', isGroup: false, directKey: 'u1:u2', createdBy: 'u2', createdAt: 2 }))).toBe(
        'conversations_direct_key_idx',
      )
      // Groups have no direct_key: any number of them may leave it empty.
      await db.insert(conversations).values([
        { id: 'g1', isGroup: true, createdBy: 'u1', createdAt: 1 },
        { id: 'g2', isGroup: true, createdBy: 'u1', createdAt: 1 },
      ])

      await db.insert(messages).values({ id: 'm1', conversationId: 'c1', seq: 1, senderId: 'u1', messageId: 'k1', content: 'hi', createdAt: 1 })
      expect(await violated(db.insert(messages).values({ id: 'm2', conversationId: 'c1', seq: 1, senderId: 'u2', messageId: 'k2', content: 'hi', createdAt: 1 }))).toBe(
        'messages_conversation_seq_idx',
      )
      expect(await violated(db.insert(messages).values({ id: 'm3', conversationId: 'g1', seq: 1, senderId: 'u1', messageId: 'k1', content: 'hi', createdAt: 1 }))).toBe(
        'messages_message_id_sender_idx',
      )
      // The same key from another sender is another message.
      await db.insert(messages).values({ id: 'm4', conversationId: 'g1', seq: 1, senderId: 'u2', messageId: 'k1', content: 'hi', createdAt: 1 })
    })
  })

  test('on PostgreSQL, text orders byte by byte as in SQLite, in ORDER BY and in row comparisons, and lower() folds ASCII only', async () => {
    await using fresh = await freshDatabase()
    await using(await openPostgres(fresh.url, { poolSize: 1 }), async ({ sql, db }) => {
      const ids = ['a', 'B', 'b', '_', 'Z', 'é', 'e', '1']
      await db.insert(users).values({ id: 'u', username: 'u', passwordHash: 'x', createdAt: 1 })
      await db.insert(conversations).values(ids.map((id) => ({ id, isGroup: true, createdBy: 'u', createdAt: 1 })))
      await db.insert(conversationMembers).values(ids.map((id) => ({ conversationId: id, userId: 'u', joinedAt: 1, lastActivityAt: 5 })))
      const bytewise = [...ids].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
      expect(bytewise).toEqual(['1', 'B', 'Z', '_', 'a', 'b', 'e', 'é'])
      expect((await sql`SELECT id FROM conversations ORDER BY id`).map((r) => r.id)).toEqual(bytewise)
      const below = await sql`SELECT conversation_id FROM conversation_members
        WHERE user_id = 'u' AND (last_activity_at, conversation_id) < (${5}, ${'a'}) ORDER BY last_activity_at DESC, conversation_id DESC`
      expect(below.map((r) => r.conversation_id)).toEqual(['_', 'Z', 'B', '1'])
      // SQLite's lower() folds A–Z only, so 'Ä' and 'ä' are two usernames there; here too.
      await db.insert(users).values([
        { id: 'u1', username: 'Ärger', passwordHash: 'x', createdAt: 1 },
        { id: 'u2', username: 'ärger', passwordHash: 'x', createdAt: 1 },
      ])
      expect(await sql`SELECT count(*) AS n FROM users WHERE lower(username) = 'ärger'`).toEqual([{ n: 1 }] as never)
    })
  })

  test('on PostgreSQL, members keep the order they were added in, and cascade away with their conversation', async () => {
    await using fresh = await freshDatabase()
    await using(await openPostgres(fresh.url, { poolSize: 1 }), async ({ sql, db }) => {
      await db.insert(users).values(['u3', 'u1', 'u2'].map((id) => ({ id, username: id, passwordHash: 'x', createdAt: 1 })))
      await db.insert(conversations).values({ id: 'c', isGroup: true, createdBy: 'u1', createdAt: 1 })
      for (const userId of ['u3', 'u1', 'u2']) await db.insert(conversationMembers).values({ conversationId: 'c', userId, joinedAt: 1 })
      expect((await sql`SELECT user_id FROM conversation_members ORDER BY position`).map((r) => r.user_id)).toEqual(['u3', 'u1', 'u2'])
      await sql`DELETE FROM conversations WHERE id = 'c'`
      expect(await sql`SELECT count(*) AS n FROM conversation_members`).toEqual([{ n: 0 }] as never)
    })
  })
})

describe.skipIf(skipPostgresTests)('openPostgres refuses a database it cannot use', () => {
  async function refusal(url: string): Promise<ConfigError> {
    const error = await rejection(openPostgres(url, { poolSize: 1 }))
    expect(error).toBeInstanceOf(ConfigError)
    return error as ConfigError
  }

  test('on PostgreSQL, an unreachable port, a missing database, an unknown role or host is a ConfigError naming DATABASE_URL, the password masked', async () => {
    const port = closedPort()
    const cases = {
      closedPort: await refusal(`postgres://postgres:hunter2@127.0.0.1:${port}/pneumatic`),
      missingDatabase: await refusal(testServerUrl({ database: 'pneumatic_no_such_database' })),
      unknownRole: await refusal(testServerUrl({ user: 'no_such_role', database: 'postgres' })),
      unknownHost: await refusal('postgres://postgres:hunter2@no-such-host.invalid:5432/pneumatic'),
    }
    for (const error of Object.values(cases)) {
      expect(error.variable).toBe('DATABASE_URL')
      expect(error.message).not.toContain('hunter2')
      expect(error.message).toContain(':***@')
      expect(error.message).not.toContain('\n')
    }
    expect(cases.closedPort.message).toBe(
      `Invalid configuration: DATABASE_URL points to postgres://postgres:***@127.0.0.1:${port}/pneumatic, which cannot be reached: connection refused (connect ECONNREFUSED 127.0.0.1:${port})`,
    )
    expect(cases.missingDatabase.message).toContain('which names a database that does not exist: database "pneumatic_no_such_database" does not exist')
    expect(cases.unknownRole.message).toContain('which refused the login: role "no_such_role" does not exist')
    expect(cases.unknownHost.message).toContain('which cannot be reached: its host name does not resolve')
  })

  test('on PostgreSQL, a refused open leaves no connection behind', async () => {
    const admin = postgres(POSTGRES_ADMIN_URL, { max: 1, onnotice: () => {} })
    try {
      await refusal(testServerUrl({ database: 'pneumatic_no_such_database' }))
      expect(await admin`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = 'pneumatic_no_such_database'`).toEqual([{ n: 0 }] as never)
    } finally {
      await admin.end({ timeout: 1 })
    }
  })
})
