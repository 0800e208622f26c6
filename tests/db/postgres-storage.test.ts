import { describe, expect, test } from 'bun:test'
import { eq, sql as drizzleSql } from 'drizzle-orm'
import postgres from 'postgres'
import { collectQueries, type QueryObserver } from '../../src/db/client'
import { openPostgres, type PostgresHandle } from '../../src/db/postgres/connection'
import { observePostgres } from '../../src/db/postgres/observe'
import { conversations, users } from '../../src/db/postgres/schema'
import { postgresStorage, storageUnavailable } from '../../src/db/storage'
import { StorageUnavailable } from '../../src/shared/errors'
import { freshDatabase, POSTGRES_ADMIN_URL, skipPostgresTests, type FreshDatabase } from '../support/postgres'
import { rejection } from '../support/services'

function closedPort(): number {
  const listener = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const port = listener.port
  listener.stop(true)
  return port
}

/** A fresh, migrated database and a handle on it, both gone on dispose. */
async function opened(poolSize = 2): Promise<{ fresh: FreshDatabase; handle: PostgresHandle; [Symbol.asyncDispose](): Promise<void> }> {
  const fresh = await freshDatabase()
  const handle = await openPostgres(fresh.url, { poolSize })
  return {
    fresh,
    handle,
    async [Symbol.asyncDispose]() {
      await handle.close()
      await fresh[Symbol.asyncDispose]()
    },
  }
}

/** An observer that keeps the failures it is told about. */
function failures(): QueryObserver & { errors: unknown[] } {
  const errors: unknown[] = []
  return { errors, statement() {}, transaction() {}, failed: (error) => void errors.push(error) }
}

/** Waits until the server shows `count` backends of `database` running a statement like `pattern`. */
async function untilRunning(admin: postgres.Sql, database: string, pattern: string, count = 1): Promise<void> {
  for (;;) {
    const [row] = await admin`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${database} AND query LIKE ${pattern} AND pid <> pg_backend_pid()`
    if (row!.n >= count) return
    await Bun.sleep(5) // polling the server's own view of what runs; nothing else says when a statement has started
  }
}

const operations = (observer: ReturnType<typeof collectQueries>) => {
  const taken = observer.take()
  return { statements: taken.statements.map(([operation]) => operation), transactions: taken.transactions.length }
}

describe.skipIf(skipPostgresTests)('observePostgres on PostgreSQL', () => {
  test('on PostgreSQL, every statement drizzle sends is timed once and told to every observer, and each transaction as a whole', async () => {
    await using o = await opened()
    const { db } = o.handle
    const metrics = collectQueries()
    const tracing = collectQueries()
    observePostgres(o.handle, metrics)
    observePostgres(o.handle, tracing)

    await db.insert(users).values({ id: 'u1', username: 'ada', passwordHash: 'x', createdAt: 1 })
    await db.select().from(users).where(eq(users.id, 'u1'))
    await db.execute(drizzleSql`SELECT 1`)
    await db.transaction(async (tx) => {
      await tx.insert(conversations).values({ id: 'c1', isGroup: true, createdBy: 'u1', createdAt: 1 })
      await tx.update(users).set({ fullName: 'Ada' }).where(eq(users.id, 'u1'))
      await tx.transaction(async (nested) => {
        await nested.delete(conversations).where(eq(conversations.id, 'c1'))
      })
    })
    await db.update(users).set({ tokenVersion: 1 }).prepare('bump').execute()

    const seen = operations(metrics)
    expect(seen).toEqual({ statements: ['insert', 'select', 'select', 'insert', 'update', 'delete', 'update'], transactions: 1 })
    expect(operations(tracing)).toEqual(seen)
    const timings = [...metrics.take().statements]
    expect(timings).toEqual([]) // taken above: nothing more was timed
  })

  test('on PostgreSQL, the seconds told are how long the statement and the transaction took', async () => {
    await using o = await opened()
    const observer = collectQueries()
    observePostgres(o.handle, observer)
    await o.handle.db.transaction(async (tx) => {
      await tx.execute(drizzleSql`SELECT pg_sleep(0.05)`)
    })
    const { statements, transactions } = observer.take()
    expect(statements).toHaveLength(1)
    expect(statements[0]![1]).toBeGreaterThanOrEqual(0.05)
    expect(transactions[0]).toBeGreaterThanOrEqual(statements[0]![1])
  })

  test('on PostgreSQL, a failing statement is told as it is, and a failing transaction again as a whole', async () => {
    await using o = await opened()
    const { db } = o.handle
    const observer = failures()
    observePostgres(o.handle, observer)
    await db.insert(users).values({ id: 'u1', username: 'ada', passwordHash: 'x', createdAt: 1 })

    const duplicate = await rejection(db.insert(users).values({ id: 'u2', username: 'ADA', passwordHash: 'x', createdAt: 1 }))
    expect(observer.errors).toHaveLength(1)
    expect((observer.errors[0] as { code: string }).code).toBe('23505')
    expect((duplicate as { cause: unknown }).cause).toBe(observer.errors[0])

    observer.errors.length = 0
    await rejection(
      db.transaction(async (tx) => {
        await tx.insert(users).values({ id: 'u3', username: 'bob', passwordHash: 'x', createdAt: 1 })
        await tx.insert(users).values({ id: 'u4', username: 'BOB', passwordHash: 'x', createdAt: 1 })
      }),
    )
    expect(observer.errors.map((e) => (e as { code?: string }).code ?? (e as { cause?: { code?: string } }).cause?.code)).toEqual(['23505', '23505'])
    expect(await o.handle.sql`SELECT id FROM users ORDER BY id`).toEqual([{ id: 'u1' }] as never)
  })
})

describe.skipIf(skipPostgresTests)('storageUnavailable: which PostgreSQL errors say the storage failed', () => {
  test('on PostgreSQL, a server that refuses connections is a storage failure', async () => {
    const sql = postgres(`postgres://postgres@127.0.0.1:${closedPort()}/x`, { max: 1, onnotice: () => {} })
    try {
      const error = await rejection(sql`SELECT 1`)
      expect((error as { code: string }).code).toBe('ECONNREFUSED')
      expect(storageUnavailable(error)?.reason).toBe('the database server cannot be reached')
    } finally {
      await sql.end({ timeout: 1 })
    }
  })

  test("on PostgreSQL, the pool's connections terminated mid-query fail that query with a storage failure, told to the observer, and the pool then recovers", async () => {
    await using o = await opened(1)
    const observer = failures()
    observePostgres(o.handle, observer)
    const admin = postgres(POSTGRES_ADMIN_URL, { max: 1, onnotice: () => {} })
    try {
      const sleeping = rejection(o.handle.db.execute(drizzleSql`SELECT pg_sleep(30)`))
      await untilRunning(admin, o.fresh.name, 'SELECT pg_sleep(30)%')
      await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${o.fresh.name} AND pid <> pg_backend_pid()`
      const error = await sleeping
      const driverError = (error as { cause?: unknown }).cause ?? error
      // postgres.js reports the server's FATAL 57P01, or the closed socket when that is read first.
      expect(['57P01', 'CONNECTION_CLOSED']).toContain((driverError as { code: string }).code)
      expect(storageUnavailable(driverError)).toBeInstanceOf(StorageUnavailable)
      expect(observer.errors).toEqual([driverError])
      // The pool reconnects by itself. postgres.js 3.4.9 keeps the terminated session's error and
      // fails the reconnected connection's first query with it: a storage failure too, so a 503.
      const afterwards: unknown[] = []
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          afterwards.push(await o.handle.db.execute(drizzleSql`SELECT 1 AS back`))
          break
        } catch (error) {
          afterwards.push(storageUnavailable((error as { cause?: unknown }).cause ?? error)?.reason)
        }
      }
      expect(afterwards.at(-1)).toEqual([{ back: 1 }])
      for (const failed of afterwards.slice(0, -1)) expect(failed).toMatch(/^the database server /)
    } finally {
      await admin.end({ timeout: 1 })
    }
  }, 15_000) // closing a pool whose connection was terminated mid-query waits for its whole timeout (postgres.js on Bun)

  test('on PostgreSQL, errors about the request are not storage failures; corrupt data is a lasting one', async () => {
    await using o = await opened()
    const { sql } = o.handle
    await sql`INSERT INTO users (id, username, password_hash, created_at) VALUES ('u1', 'ada', 'x', 1)`
    const request = {
      duplicate: await rejection(sql`INSERT INTO users (id, username, password_hash, created_at) VALUES ('u2', 'ADA', 'x', 1)`),
      noSuchTable: await rejection(sql`SELECT * FROM no_such_table`),
      badNumber: await rejection(sql`SELECT 'x'::bigint`),
      foreignKey: await rejection(sql`INSERT INTO sessions (id, user_id, current_jti, created_at) VALUES ('s', 'nobody', 'j', 1)`),
      cancelled: await rejection(sql`SET statement_timeout = 1; SELECT pg_sleep(1)`.simple()),
    }
    expect(Object.values(request).map((e) => [(e as { code: string }).code, storageUnavailable(e)])).toEqual([
      ['23505', null],
      ['42P01', null],
      ['22P02', null],
      ['23503', null],
      ['57014', null],
    ])
    const corrupt = storageUnavailable({ name: 'PostgresError', code: 'XX001', message: 'invalid page in block 0 of relation base/1/2' })
    expect(corrupt?.reason).toBe('the database server holds corrupt data')
    expect(storageUnavailable({ code: 'CONNECTION_CLOSED' })?.reason).toBe('the database server cannot be reached')
    expect(storageUnavailable({ code: '53100' })?.reason).toBe('the database server is on a full disk')
    expect(storageUnavailable({ code: '08006' })?.reason).toBe('the database server lost the connection')
  })
})

describe.skipIf(skipPostgresTests)('postgresStorage: the readiness of a PostgreSQL database', () => {
  test('on PostgreSQL, a probe commits the readiness row, and a pass stands for a second', async () => {
    await using o = await opened()
    const storage = postgresStorage(o.handle)
    const before = Date.now()
    await storage.probe()
    const [first] = await o.handle.sql`SELECT id, checked_at FROM readiness`
    expect(first!.id).toBe(1)
    expect(first!.checked_at).toBeGreaterThanOrEqual(before)
    await storage.probe()
    expect(await o.handle.sql`SELECT id, checked_at FROM readiness`).toEqual([first] as never)
  })

  test('on PostgreSQL, a storage failure a request met makes the next probe run afresh', async () => {
    await using o = await opened()
    const storage = postgresStorage(o.handle)
    await storage.probe()
    await o.handle.sql`UPDATE readiness SET checked_at = 0`
    storage.observer.failed!({ code: '57P01' })
    await storage.probe()
    const [row] = await o.handle.sql`SELECT checked_at FROM readiness`
    expect(row!.checked_at).toBeGreaterThan(0)
  })

  test('on PostgreSQL, corrupt data a request met keeps the probe failing, though the server answers', async () => {
    await using o = await opened()
    const storage = postgresStorage(o.handle)
    storage.observer.failed!({ name: 'PostgresError', code: 'XX002', message: 'index "x" contains unexpected zero page' })
    storage.observer.failed!({ code: '23505' })
    const error = await rejection(storage.probe())
    expect(error).toBeInstanceOf(StorageUnavailable)
    expect((error as StorageUnavailable).reason).toBe('the database server holds a corrupt index')
  })

  test('on PostgreSQL, a server that does not answer in time is unavailable, and probes meanwhile share one write', async () => {
    await using o = await opened(3)
    const storage = postgresStorage(o.handle, { timeoutMs: 200 })
    const admin = postgres(o.fresh.url, { max: 2, onnotice: () => {} })
    try {
      const holder = await admin.reserve()
      await holder`BEGIN`
      await holder`LOCK TABLE readiness IN ACCESS EXCLUSIVE MODE`
      const probes = [storage.probe(), storage.probe(), storage.probe()].map(rejection)
      await untilRunning(admin, o.fresh.name, 'INSERT INTO readiness%')
      const errors = await Promise.all(probes)
      for (const error of errors) expect((error as StorageUnavailable).reason).toBe('the database server did not answer within 0.2 s')
      const [{ n }] = (await admin`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${o.fresh.name} AND query LIKE 'INSERT INTO readiness%'`) as unknown as [{ n: number }]
      expect(n).toBe(1)
      await holder`ROLLBACK`
      holder.release()
      await storage.probe()
    } finally {
      await admin.end({ timeout: 1 })
    }
  })

  test('on PostgreSQL, a server that cannot be reached is unavailable, saying so', async () => {
    const sql = postgres(`postgres://postgres@127.0.0.1:${closedPort()}/x`, { max: 1, onnotice: () => {} })
    try {
      const storage = postgresStorage({ sql, db: null as never, close: () => sql.end({ timeout: 1 }) })
      const error = await rejection(storage.probe())
      expect(error).toBeInstanceOf(StorageUnavailable)
      expect((error as StorageUnavailable).reason).toBe('the database server cannot be reached')
    } finally {
      await sql.end({ timeout: 1 })
    }
  })
})
