import { Database } from 'bun:sqlite'
import { mkdtempSync, rmSync } from 'node:fs'
import postgres from 'postgres'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createApp, type App } from '../../src/app'
import { createAuthThrottle } from '../../src/auth/throttle'
import { createTokens } from '../../src/auth/tokens'
import { loadConfig, type LogLevel, type MessageWriterKind } from '../../src/config'
import { openStore } from '../../src/db/store'
import type { SqliteStore } from '../../src/db/store.sqlite'
import { createMessageWriter } from '../../src/messages/writer'
import type { AppDeps } from '../../src/deps'
import { createLogger, type Logger } from '../../src/observability/logger'
import { createMetrics } from '../../src/observability/metrics'
import { createLocalBus } from '../../src/realtime/bus'
import { memoryLimits } from '../../src/limits/counters'
import { memoryPresence } from '../../src/presence/store.memory'
import { freshMigratedDatabase, type FreshDatabase } from './postgres'

export const TEST_SECRET = 'test-secret-that-is-at-least-32-characters-long'

/**
 * Tests run many requests as one user, or as one 'unknown' client under app.handle: limits are
 * off unless a test sets its own (tests/limits/http.test.ts does).
 */
const NO_RATE_LIMITS = {
  RATE_LIMIT_PER_MINUTE: '0',
  RATE_LIMIT_PER_HOUR: '0',
  LOGIN_FAILURE_LIMIT_PER_IP: '0',
  LOGIN_FAILURE_LIMIT_PER_USERNAME: '0',
  SIGNUP_LIMIT_PER_IP: '0',
  WS_FRAME_LIMIT_PER_MINUTE: '0',
}

/**
 * The engine the suite runs on: SQLite files by default, PostgreSQL with
 * PNEUMATIC_TEST_DATABASE=postgres (a fresh database per test app, see tests/support/postgres.ts).
 * A test that only makes sense on one engine says so in its name and skips on the other.
 */
const TEST_ENGINE: 'sqlite' | 'postgres' = process.env.PNEUMATIC_TEST_DATABASE === 'postgres' ? 'postgres' : 'sqlite'
export const onPostgres = TEST_ENGINE === 'postgres'

/** SQL for the UTF-8 bytes of a row's `content`, in upper-case hex, on the test engine. */
export const CONTENT_HEX = onPostgres ? "upper(encode(convert_to(content, 'UTF8'), 'hex'))" : 'hex(CAST(content AS BLOB))'

export type TestApp = {
  app: App
  deps: AppDeps
  dir: string
  /** The database's URL (DATABASE_URL), whichever the engine. */
  database: string
  /**
   * Runs SQL on the app's database, whichever the engine, with `?` for each parameter; the rows.
   * For what a test checks in storage (counts, stored bytes) or breaks on purpose.
   */
  sql<Row = Record<string, unknown>>(text: string, ...params: unknown[]): Promise<Row[]>
  /**
   * Stops this server (closing its sockets) and starts a new app on the same database file and,
   * if this one was listening, the same port: a server restart as clients see it. `whileDown`
   * runs on the new app before it listens: what it changes, clients can only learn by catching up.
   */
  restart(whileDown?: (next: TestApp) => Promise<void>): Promise<TestApp>
  [Symbol.asyncDispose](): Promise<void>
}

/** A complete app on a fresh SQLite file of its own (or on `dir`'s, to restart), as main.ts builds it. */
export type TestAppOptions = {
  /** Reuse this directory's database (a restart); a fresh one otherwise. */
  dir?: string
  /** Where the app logs (silent by default); see captureLogs(). */
  logger?: Logger
  /** How messages are committed (MESSAGE_WRITER): inline on the event loop by default, or in a worker. */
  writer?: MessageWriterKind
  /** Reuse this database (a restart, on PostgreSQL). */
  database?: FreshDatabase
}

export async function testApp(env: Record<string, string> = {}, options: TestAppOptions = {}): Promise<TestApp> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'pneumatic-test-'))
  const postgresDatabase = onPostgres ? (options.database ?? (await freshMigratedDatabase())) : null
  const database = postgresDatabase?.url ?? `sqlite:${join(dir, 'test.db')}`
  const config = loadConfig({ DATABASE_URL: database, JWT_SECRET: TEST_SECRET, LOG_LEVEL: 'silent', ...NO_RATE_LIMITS, ...env })
  const store = await openStore(config.database, { messageWriter: options.writer ?? config.messageWriter })
  const raw = postgresDatabase ? postgres(postgresDatabase.url, { max: 1, onnotice: () => {}, types: { bigint: postgres.BigInt } }) : null
  const deps: AppDeps = {
    config,
    store,
    writer: createMessageWriter(store),
    tokens: createTokens({ secret: TEST_SECRET, accessTtlSeconds: config.accessTokenTtlSeconds, refreshTtlSeconds: config.refreshTokenTtlSeconds }),
    authThrottle: createAuthThrottle(config),
    limits: memoryLimits,
    presence: memoryPresence(),
    bus: createLocalBus((error) => {
      throw error
    }),
    logger: options.logger ?? createLogger('silent'),
    metrics: createMetrics(),
  }
  const app = createApp(deps)
  let handedOver = false
  const stop = async () => {
    if (app.server) await app.stop(true)
    await deps.writer.close()
    await store.close()
    await raw?.end({ timeout: 1 })
  }
  return {
    app,
    deps,
    dir,
    database,
    async sql<Row>(text: string, ...params: unknown[]): Promise<Row[]> {
      if (!raw) return sqliteOf({ deps }).sqlite.query(text).all(...(params as never[])) as Row[]
      return runOnPostgres<Row>(raw, text, params)
    },
    async restart(whileDown) {
      const port = app.server?.port
      await stop()
      handedOver = true
      const next = await testApp(env, { ...options, dir, ...(postgresDatabase ? { database: postgresDatabase } : {}) })
      try {
        await whileDown?.(next)
      } catch (error) {
        await next[Symbol.asyncDispose]()
        throw error
      }
      if (port) next.app.listen({ port, hostname: '127.0.0.1' })
      return next
    },
    async [Symbol.asyncDispose]() {
      if (handedOver) return
      await stop()
      await postgresDatabase?.[Symbol.asyncDispose]()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** The SQLite store under a test app, for tests of what only SQLite has (pragmas, the file, query plans). */
export function sqliteOf(t: Pick<TestApp, 'deps'>): SqliteStore {
  const { store } = t.deps
  if (store.engine !== 'sqlite') throw new Error('This test needs the SQLite engine')
  return store as SqliteStore
}

/**
 * A database of the test engine for server processes (DATABASE_URL), with SQL on it as TestApp.sql
 * runs it: a file in a directory of its own, or a fresh PostgreSQL database. Removed on dispose.
 */
export async function testDatabase(): Promise<{
  url: string
  dir: string
  sql<Row = Record<string, unknown>>(text: string, ...params: unknown[]): Promise<Row[]>
  /** As sql(), for SQL that writes: on SQLite through a connection of its own, which waits for the servers' writes. */
  write<Row = Record<string, unknown>>(text: string, ...params: unknown[]): Promise<Row[]>
  [Symbol.asyncDispose](): Promise<void>
}> {
  const dir = mkdtempSync(join(tmpdir(), 'pneumatic-db-'))
  const fresh = onPostgres ? await freshMigratedDatabase() : null
  const url = fresh?.url ?? `sqlite:${join(dir, 'chat.db')}`
  const raw = fresh ? postgres(fresh.url, { max: 1, onnotice: () => {}, types: { bigint: postgres.BigInt } }) : null
  return {
    url,
    dir,
    async sql<Row>(text: string, ...params: unknown[]): Promise<Row[]> {
      if (raw) return runOnPostgres<Row>(raw, text, params)
      const db = new Database(join(dir, 'chat.db'), { readonly: true })
      try {
        return db.query(text).all(...(params as never[])) as Row[]
      } finally {
        db.close()
      }
    },
    async write<Row>(text: string, ...params: unknown[]): Promise<Row[]> {
      if (raw) return runOnPostgres<Row>(raw, text, params)
      const db = new Database(join(dir, 'chat.db'))
      try {
        db.run('PRAGMA busy_timeout = 5000')
        return db.query(text).all(...(params as never[])) as Row[]
      } finally {
        db.close()
      }
    },
    async [Symbol.asyncDispose]() {
      await raw?.end({ timeout: 1 })
      await fresh?.[Symbol.asyncDispose]()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** `?` parameters as PostgreSQL's $n, and bigints (count(*)) as numbers, as SQLite gives them. */
async function runOnPostgres<Row>(raw: postgres.Sql, text: string, params: unknown[]): Promise<Row[]> {
  let n = 0
  const rows = await raw.unsafe(text.replace(/\?/g, () => `$${++n}`), params as never[])
  return rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v]))) as Row[]
}

/** Listens on a free port; returns the base URLs. */
export function listen(app: App): { http: string; ws: string } {
  app.listen({ port: 0, hostname: '127.0.0.1' })
  const http = `http://127.0.0.1:${app.server!.port}`
  return { http, ws: http.replace('http', 'ws') + '/ws' }
}

type LogLine = Record<string, any>

/**
 * A logger that keeps every JSON line it writes, for tests that read the logs. Some lines are
 * written after a response has gone (request logs, socket closes): waitFor() resolves when a
 * matching line is written, and fails after 5 s.
 */
export function captureLogs(level: LogLevel = 'info') {
  const raw: string[] = []
  const waiters: Array<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = []
  const logger = createLogger(level, {
    write(chunk: string) {
      raw.push(chunk)
      const line = JSON.parse(chunk) as LogLine
      for (const w of [...waiters]) {
        if (!w.match(line)) continue
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(line)
      }
    },
  })
  return {
    logger,
    get lines(): LogLine[] {
      return raw.map((l) => JSON.parse(l))
    },
    text: () => raw.join(''),
    waitFor(match: (l: LogLine) => boolean): Promise<LogLine> {
      const seen = raw.map((l) => JSON.parse(l) as LogLine).find(match)
      if (seen) return Promise.resolve(seen)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no matching log line within 5 s')), 5000)
        waiters.push({ match, resolve: (l) => (clearTimeout(timer), resolve(l)) })
      })
    },
  }
}
