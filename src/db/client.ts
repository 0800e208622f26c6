import { Database } from 'bun:sqlite'
import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { drizzle } from 'drizzle-orm/bun-sqlite'
import { migrate } from 'drizzle-orm/bun-sqlite/migrator'
import * as schema from './schema'

export type Db = ReturnType<typeof drizzle<typeof schema>>

export type DbHandle = { db: Db; sqlite: Database; close(): void }

const MIGRATIONS = join(import.meta.dir, '..', '..', 'drizzle')

/**
 * Opens the database, sets the pragmas every connection needs and applies pending migrations.
 *
 * synchronous=FULL: a transaction is on disk before COMMIT returns, so "acknowledged" (an HTTP
 * reply or a WebSocket delivery sent after commit) survives a power loss, not only a crash.
 */
export function openDatabase(path: string): DbHandle {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  const sqlite = new Database(path, { create: true, strict: true })
  if (path !== ':memory:') sqlite.run('PRAGMA journal_mode = WAL')
  sqlite.run('PRAGMA synchronous = FULL')
  sqlite.run('PRAGMA foreign_keys = ON')
  sqlite.run('PRAGMA busy_timeout = 5000')
  const db = drizzle({ client: sqlite, schema })
  migrate(db, { migrationsFolder: MIGRATIONS })
  return { db, sqlite, close: () => sqlite.close() }
}

/** A trivial query, for readiness: throws when the database cannot answer. */
export function ping(sqlite: Database): void {
  sqlite.query('SELECT 1').get()
}
