import type { Database } from 'bun:sqlite'
import { accessSync, constants, existsSync, mkdirSync, rmSync, type Stats, statfsSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { sql } from 'drizzle-orm'
import { ConfigError } from '../config'
import { StorageUnavailable } from '../shared/errors'
import type { Db, QueryObserver } from './client'
import type { PostgresHandle } from './postgres/connection'
import { readiness } from './schema'

/**
 * Whether the database can serve, in one place: which driver errors mean the storage failed
 * (rather than the request), the readiness probe, and the checks before a database is opened.
 * Another engine plugs in here: its own codes in storageFailure(), its own Storage.
 */

/** A driver failure of the storage itself. A lasting one does not heal while the server runs. */
type StorageFailure = { subject: string; reason: string; lasting: boolean }

const FILE = 'the database file'
const SERVER = 'the database server'

/**
 * SQLite's result codes (bun:sqlite's SQLiteError.code, extended codes included) that say the
 * storage failed, with what they say about the file. SQLITE_BUSY is only ever seen once
 * busy_timeout has run out.
 */
const SQLITE_FAILURES: ReadonlyArray<[prefix: string, failure: StorageFailure]> = [
  ['SQLITE_FULL', { subject: FILE, reason: 'is on a full disk', lasting: false }],
  ['SQLITE_IOERR', { subject: FILE, reason: 'cannot be read or written (I/O error)', lasting: false }],
  ['SQLITE_CORRUPT', { subject: FILE, reason: 'is corrupt', lasting: true }],
  ['SQLITE_NOTADB', { subject: FILE, reason: 'is not a SQLite database', lasting: true }],
  ['SQLITE_READONLY', { subject: FILE, reason: 'is read-only', lasting: false }],
  ['SQLITE_CANTOPEN', { subject: FILE, reason: 'cannot be opened', lasting: false }],
  ['SQLITE_BUSY', { subject: FILE, reason: 'is locked by another connection', lasting: false }],
]

const unreachable: StorageFailure = { subject: SERVER, reason: 'cannot be reached', lasting: false }

/**
 * What postgres.js (and the sockets under it) report when the connection to PostgreSQL failed:
 * the server is down, restarting, unreachable, or this pool is closing. Each heals when the server
 * is back: postgres.js opens a new connection for the next query.
 */
const POSTGRES_CONNECTION_FAILURES: ReadonlyMap<string, StorageFailure> = new Map([
  ...['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'].map((code) => [code, unreachable] as const),
  ...['CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT'].map((code) => [code, unreachable] as const),
])

/** PostgreSQL's SQLSTATEs (a class of two characters, or a whole code) that say the storage failed. */
const POSTGRES_SQLSTATE_FAILURES: ReadonlyArray<[prefix: string, failure: StorageFailure]> = [
  ['08', { subject: SERVER, reason: 'lost the connection', lasting: false }],
  ['53100', { subject: SERVER, reason: 'is on a full disk', lasting: false }],
  ['53', { subject: SERVER, reason: 'is out of resources (memory or connections)', lasting: false }],
  ['57P01', { subject: SERVER, reason: 'is shutting down or ended the connection', lasting: false }],
  ['57P02', { subject: SERVER, reason: 'is recovering from a crash', lasting: false }],
  ['57P03', { subject: SERVER, reason: 'is starting up or shutting down', lasting: false }],
  ['58', { subject: SERVER, reason: 'cannot read or write its files (I/O error)', lasting: false }],
  ['25006', { subject: SERVER, reason: 'is read-only (a standby, or writes are switched off)', lasting: false }],
  ['XX001', { subject: SERVER, reason: 'holds corrupt data', lasting: true }],
  ['XX002', { subject: SERVER, reason: 'holds a corrupt index', lasting: true }],
]

/**
 * The driver's own error under the wrappers around it (Drizzle's "Failed query" keeps it as its
 * cause): the first in the chain that carries a string code, or the error itself.
 */
export function driverError(error: unknown): unknown {
  let at = error
  for (let depth = 0; depth < 5 && at !== null && typeof at === 'object'; depth++) {
    if (typeof (at as { code?: unknown }).code === 'string') return at
    at = (at as { cause?: unknown }).cause
  }
  return error
}

/** The storage failure a driver error reports, or null when the error is about something else. */
function storageFailure(error: unknown): StorageFailure | null {
  const code = (driverError(error) as { code?: unknown } | null)?.code
  if (typeof code !== 'string') return null
  for (const [prefix, failure] of SQLITE_FAILURES) {
    if (code === prefix || code.startsWith(`${prefix}_`)) return failure
  }
  const connection = POSTGRES_CONNECTION_FAILURES.get(code)
  if (connection) return connection
  if (/^[0-9A-Z]{5}$/.test(code)) {
    for (const [prefix, failure] of POSTGRES_SQLSTATE_FAILURES) {
      if (code.startsWith(prefix)) return failure
    }
  }
  return null
}

/**
 * The client's answer (503 storage_unavailable, Retry-After) to an error that says the storage
 * failed, whichever request met it; null for any other error. Also takes the plain copy of a
 * driver error that a failed message write carries back (its `code` is all that is read).
 */
export function storageUnavailable(error: unknown): StorageUnavailable | null {
  if (error instanceof StorageUnavailable) return error
  const failure = storageFailure(error)
  return failure && new StorageUnavailable(`${failure.subject} ${failure.reason}`, { cause: error })
}

/** Below this much free space on the database's file system, the server says it is not ready. */
export const MIN_FREE_BYTES = 1024 * 1024

/** A probe that passed stands for this long, so polling /ready hard costs at most one commit per interval. */
const PROBE_REUSE_MS = 1000

export type Storage = {
  /** Resolves when the database can be read and written now; otherwise rejects, with a StorageUnavailable saying why when it knows. */
  probe(): Promise<void>
}

/**
 * The readiness of a SQLite database. The probe reads the first page of the schema and the root
 * and newest leaf of every table with a rowid (cheap: a few pages, cached), commits a write to the one-row
 * `readiness` table (with synchronous=FULL, an fsync), and checks the disk has room to grow:
 * SQLite reuses a checkpointed WAL's space, so a small write can succeed on a full disk where
 * the next real one fails.
 *
 * `observer` (on the connection, see observeQueries) hears every statement that fails. A storage
 * failure a request met makes the next /ready probe afresh; a corrupt file, which cannot heal
 * while the server runs, keeps /ready failing until the server is restarted (on a repaired
 * file): the probe reads only the edges of the tables, a request may read the page that is bad.
 */
export function sqliteStorage(db: Db, sqlite: Database, path: string): Storage & { observer: QueryObserver } {
  let lasting: StorageUnavailable | null = null
  let passedUntil = 0
  let statements: { tables: ReturnType<Database['query']>; write: { run(values: { checkedAt: number }): unknown } } | null = null

  function failed(error: unknown): void {
    const failure = storageFailure(error)
    if (!failure) return
    passedUntil = 0
    if (failure.lasting) lasting ??= storageUnavailable(error)
  }

  function probeNow(): void {
    if (path !== ':memory:') checkFreeSpace(path)
    statements ??= {
      // Tables with a rowid, the full-text index's own (shadow) tables among them; not the virtual
      // table itself, whose max(rowid) would read every row.
      tables: sqlite.query("SELECT name FROM pragma_table_list WHERE schema = 'main' AND type IN ('table', 'shadow') AND wr = 0 AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"),
      write: db
        .insert(readiness)
        .values({ id: 1, checkedAt: sql.placeholder('checkedAt') })
        .onConflictDoUpdate({ target: readiness.id, set: { checkedAt: sql`excluded.checked_at` } })
        .prepare(),
    }
    for (const { name } of statements.tables.all() as { name: string }[]) {
      sqlite.query(`SELECT max(rowid) FROM "${name.replaceAll('"', '""')}"`).get()
    }
    statements.write.run({ checkedAt: Date.now() })
  }

  return {
    observer: { statement() {}, transaction() {}, failed },
    async probe() {
      if (lasting) throw lasting
      if (performance.now() < passedUntil) return
      try {
        probeNow()
      } catch (error) {
        throw storageUnavailable(error) ?? error
      }
      passedUntil = performance.now() + PROBE_REUSE_MS
    },
  }
}

/** How long a readiness probe waits for PostgreSQL before saying it is unavailable. */
const POSTGRES_PROBE_TIMEOUT_MS = 3000

/**
 * The readiness of a PostgreSQL database: the probe commits a write to the one-row `readiness`
 * table (an answer to SELECT 1 proves nothing about a server that is read-only, out of disk or
 * holding locks) and waits at most `timeoutMs` for it. One write at a time: probes
 * asked for while it runs wait for the same one, so polling /ready against a hung server keeps one
 * query waiting, not one per poll. (postgres.js's cancel() would open a connection of its own,
 * whose failure against a dead server nothing could catch.)
 *
 * `observer` (see observePostgres) hears every statement that fails: a storage failure a request
 * met makes the next probe run afresh, and a lasting one (corrupt data) keeps /ready failing until
 * the server is restarted.
 */
export function postgresStorage(handle: PostgresHandle, { timeoutMs = POSTGRES_PROBE_TIMEOUT_MS } = {}): Storage & { observer: QueryObserver } {
  let lasting: StorageUnavailable | null = null
  let passedUntil = 0
  let writing: Promise<void> | null = null

  function failed(error: unknown): void {
    const failure = storageFailure(error)
    if (!failure) return
    passedUntil = 0
    if (failure.lasting) lasting ??= storageUnavailable(error)
  }

  function write(): Promise<void> {
    writing ??= (async () => {
      await handle.sql`INSERT INTO readiness (id, checked_at) VALUES (1, ${Date.now()})
        ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at`
      passedUntil = performance.now() + PROBE_REUSE_MS
    })().finally(() => {
      writing = null
    })
    return writing
  }

  return {
    observer: { statement() {}, transaction() {}, failed },
    async probe() {
      if (lasting) throw lasting
      if (performance.now() < passedUntil) return
      let timer: ReturnType<typeof setTimeout> | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new StorageUnavailable(`the database server did not answer within ${timeoutMs / 1000} s`)), timeoutMs)
      })
      try {
        await Promise.race([write(), timeout])
      } catch (error) {
        throw storageUnavailable(error) ?? error
      } finally {
        clearTimeout(timer)
      }
    },
  }
}

function checkFreeSpace(path: string): void {
  let free: number
  try {
    const { bavail, bsize } = statfsSync(path)
    free = bavail * bsize
  } catch (error) {
    throw new StorageUnavailable(`the database file cannot be checked: ${fsCause(error)}`, { cause: error })
  }
  if (free < MIN_FREE_BYTES) throw new StorageUnavailable('the database file is on a full disk')
}

const FS_CAUSES: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is not a directory',
  ENOENT: 'no such file or directory',
  ENOSPC: 'no space left on the device',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the name is too long',
}

function fsCause(error: unknown): string {
  const { code, message } = error as { code?: string; message?: string }
  return (code && FS_CAUSES[code]) || message || String(error)
}

/** The one-line start-up refusal: which variable, which path, what is wrong with it. */
function unusable(path: string, what: string): ConfigError {
  return new ConfigError('DATABASE_URL', `points to ${JSON.stringify(resolve(path))}, which ${what}`)
}

function requireAccess(path: string, mode: number, what: string, databasePath = path): void {
  try {
    accessSync(path, mode)
  } catch (error) {
    throw unusable(databasePath, `${what}: ${fsCause(error)}`)
  }
}

/**
 * Checks, before SQLite opens anything, that `path` can hold the database: an existing regular
 * file this process may read and write, in a directory where it may create the -wal and -shm
 * files; or a new file, whose missing directories are made here. Returns how to remove what it
 * made, so that a database that then fails to open leaves nothing behind. Throws a ConfigError
 * naming DATABASE_URL, the path and the cause.
 */
export function prepareLocation(path: string): { undo(): void } {
  let file: Stats | undefined
  try {
    file = statSync(path, { throwIfNoEntry: false })
  } catch (error) {
    if ((error as { code?: string }).code !== 'ENOTDIR') throw unusable(path, `cannot be reached: ${fsCause(error)}`)
  }
  const dir = dirname(path)
  if (file) {
    if (file.isDirectory()) throw unusable(path, 'is a directory, not a database file')
    if (!file.isFile()) throw unusable(path, 'is not a regular file')
    requireAccess(path, constants.R_OK, 'cannot be read')
    requireAccess(path, constants.W_OK, 'cannot be written')
    requireAccess(dir, constants.W_OK | constants.X_OK, 'is in a directory where SQLite cannot create its -wal and -shm files', path)
    return { undo() {} }
  }
  let existing = dir
  while (!existsSync(existing)) existing = dirname(existing)
  if (!statSync(existing).isDirectory()) throw unusable(path, `cannot be created: ${JSON.stringify(resolve(existing))} is not a directory`)
  requireAccess(existing, constants.W_OK | constants.X_OK, `cannot be created in ${JSON.stringify(resolve(existing))}`, path)
  let made: string | undefined
  try {
    made = mkdirSync(dir, { recursive: true })
  } catch (error) {
    throw unusable(path, `cannot be created: ${fsCause(error)}`)
  }
  return {
    undo() {
      if (made) return rmSync(made, { recursive: true, force: true })
      for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(path + suffix, { force: true })
    },
  }
}

/**
 * The start-up refusal for an error met while opening and migrating the database: a ConfigError
 * for what the driver says is wrong with the file, anything else as it is.
 */
export function openFailure(path: string, error: unknown): unknown {
  const failure = storageFailure(error)
  if (failure) return unusable(path, failure.reason)
  if ((error as { name?: string } | null)?.name === 'SQLiteError') return unusable(path, `cannot be used: ${(error as Error).message}`)
  return error
}
