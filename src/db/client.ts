import { Database, type Statement } from 'bun:sqlite'
import { join } from 'node:path'
import { drizzle } from 'drizzle-orm/bun-sqlite'
import { migrate } from 'drizzle-orm/bun-sqlite/migrator'
import * as schema from './schema'
import { openFailure, prepareLocation, sqliteStorage, type Storage } from './storage'

export type Db = ReturnType<typeof drizzle<typeof schema>>

export type DbHandle = { db: Db; sqlite: Database; storage: Storage; close(): void }

const MIGRATIONS = join(import.meta.dir, '..', '..', 'drizzle', 'sqlite')

/**
 * Opens the database, sets the pragmas every connection needs and applies pending migrations.
 * A path that cannot hold a database (a directory, a file this process may not read or write, a
 * file that is no database...) is refused with a ConfigError naming DATABASE_URL, the path and
 * the cause, before anything is written; what opening made (a new file, its directories) is
 * removed again if it then fails.
 *
 * synchronous=FULL: a transaction is on disk before COMMIT returns, so "acknowledged" (an HTTP
 * reply or a WebSocket delivery sent after commit) survives a power loss, not only a crash.
 */
export function openDatabase(path: string): DbHandle {
  const location = path === ':memory:' ? null : prepareLocation(path)
  let connection: { db: Db; sqlite: Database } | undefined
  try {
    connection = connect(path)
    migrate(connection.db, { migrationsFolder: MIGRATIONS })
  } catch (error) {
    connection?.sqlite.close()
    location?.undo()
    throw openFailure(path, error)
  }
  const { db, sqlite } = connection
  const storage = sqliteStorage(db, sqlite, path)
  observeQueries(sqlite, storage.observer)
  return { db, sqlite, storage, close: () => sqlite.close() }
}

/**
 * A connection with the pragmas every connection needs, on a database openDatabase() has already
 * created and migrated: the message writer's worker opens its own this way. busy_timeout lets two
 * connections' writers wait for each other instead of failing. It comes first: switching to WAL
 * needs a lock, and another program holding one for a moment (a backup, the sqlite3 shell, a
 * connection closing) must make the server wait, not exit with SQLITE_BUSY at startup.
 */
export function connect(path: string): { db: Db; sqlite: Database } {
  const sqlite = new Database(path, { create: true, strict: true })
  try {
    sqlite.run('PRAGMA busy_timeout = 5000')
    if (path !== ':memory:') sqlite.run('PRAGMA journal_mode = WAL')
    sqlite.run('PRAGMA synchronous = FULL')
    sqlite.run('PRAGMA foreign_keys = ON')
    // A deleted message's text is erased, not hidden: the space it leaves in a page is zeroed.
    sqlite.run('PRAGMA secure_delete = ON')
  } catch (error) {
    sqlite.close()
    throw error
  }
  return { db: drizzle({ client: sqlite, schema }), sqlite }
}

/**
 * One value per database, made on first use: for statements a hot path prepares once and then
 * only binds and runs (Drizzle otherwise builds the SQL and SQLite compiles it on every call).
 */
export function perDatabase<T>(make: (db: Db) => T): (db: Db) => T {
  const made = new WeakMap<Db, T>()
  return (db) => {
    let value = made.get(db)
    if (value === undefined) made.set(db, (value = make(db)))
    return value
  }
}

export type QueryOperation = 'select' | 'insert' | 'update' | 'delete' | 'other'

/** Told how long each statement and each whole transaction took, in seconds, and what failed. */
export type QueryObserver = {
  statement(operation: QueryOperation, seconds: number): void
  transaction(seconds: number): void
  /** A statement or a transaction (its COMMIT included) threw this; it is thrown on as it is. */
  failed?(error: unknown): void
}

const OPERATIONS: ReadonlySet<string> = new Set(['select', 'insert', 'update', 'delete'])

export function operationOf(sql: string): QueryOperation {
  const verb = /^\s*([a-z]+)/i.exec(sql)?.[1]?.toLowerCase()
  return verb !== undefined && OPERATIONS.has(verb) ? (verb as QueryOperation) : 'other'
}

type Timed = (...args: never[]) => unknown

function timed<F extends Timed>(run: F, done: (seconds: number) => void, failed: (error: unknown) => void): F {
  return ((...args: Parameters<F>) => {
    const start = performance.now()
    try {
      return run(...args)
    } catch (error) {
      failed(error)
      throw error
    } finally {
      done((performance.now() - start) / 1000)
    }
  }) as F
}

/** Timings of statements and transactions, as a worker's connection reports them. */
export type QueryTimings = { statements: Array<[QueryOperation, number]>; transactions: number[] }

/** A QueryObserver that keeps what it is told, to be reported elsewhere (see reportQueries). */
export function collectQueries(): QueryObserver & { take(): QueryTimings } {
  let timings: QueryTimings = { statements: [], transactions: [] }
  return {
    statement: (operation, seconds) => void timings.statements.push([operation, seconds]),
    transaction: (seconds) => void timings.transactions.push(seconds),
    take() {
      const taken = timings
      timings = { statements: [], transactions: [] }
      return taken
    },
  }
}

const observers = new WeakMap<Database, QueryObserver[]>()

/**
 * A failure another connection met on this database's behalf (the message writer's worker), told
 * to whoever observes this connection, as if it had happened here.
 */
export function reportFailure(sqlite: Database, error: unknown): void {
  for (const observer of observers.get(sqlite) ?? []) observer.failed?.(error)
}

/**
 * Work another connection did on this database's behalf (the message writer's worker), told to
 * whoever observes this connection, as if it had run here.
 */
export function reportQueries(sqlite: Database, { statements, transactions }: QueryTimings): void {
  for (const observer of observers.get(sqlite) ?? []) {
    for (const [operation, seconds] of statements) observer.statement(operation, seconds)
    for (const seconds of transactions) observer.transaction(seconds)
  }
}

/**
 * Times every statement this connection runs, whoever prepares it (Drizzle prepares one per query),
 * and every transaction as a whole: with synchronous=FULL the COMMIT's fsync is most of a write's
 * cost, and bun:sqlite runs BEGIN and COMMIT itself, outside any statement prepared here.
 * The operation is read once per prepared statement, not per run. A connection is instrumented
 * once, by its first observer; later observers join the same list (metrics and tracing both
 * observe), and reportQueries tells that list what another connection did.
 */
export function observeQueries(sqlite: Database, observer: QueryObserver): void {
  const observing = observers.get(sqlite)
  if (observing) {
    observing.push(observer) // already instrumented: one timing per run, told to every observer
    return
  }
  const all = [observer]
  observers.set(sqlite, all)
  const failed = (error: unknown) => {
    for (const o of all) o.failed?.(error)
  }
  const instrumented = new WeakSet<Statement<unknown, never[]>>()
  const instrument = <S extends Statement<unknown, never[]>>(statement: S, sql: string): S => {
    if (instrumented.has(statement)) return statement // query() hands out its cached statements again
    instrumented.add(statement)
    const operation = operationOf(sql)
    const done = (seconds: number) => {
      for (const o of all) o.statement(operation, seconds)
    }
    statement.all = timed(statement.all.bind(statement), done, failed)
    statement.get = timed(statement.get.bind(statement), done, failed)
    statement.run = timed(statement.run.bind(statement), done, failed)
    statement.values = timed(statement.values.bind(statement), done, failed)
    return statement
  }
  type Prepare = (sql: string, ...rest: unknown[]) => Statement<unknown, never[]>
  const prepare = sqlite.prepare.bind(sqlite) as unknown as Prepare
  const query = sqlite.query.bind(sqlite) as unknown as Prepare
  const transaction = sqlite.transaction.bind(sqlite)
  sqlite.prepare = ((sql: string, ...rest: unknown[]) => instrument(prepare(sql, ...rest), sql)) as typeof sqlite.prepare
  sqlite.query = ((sql: string) => instrument(query(sql), sql)) as typeof sqlite.query
  // Drizzle calls .deferred() / .immediate() on what transaction() returns; those are read-only.
  const done = (seconds: number) => {
    for (const o of all) o.transaction(seconds)
  }
  sqlite.transaction = ((fn: Timed) => {
    const tx = transaction(fn)
    return Object.assign(timed(tx, done, failed), {
      deferred: timed(tx.deferred, done, failed),
      immediate: timed(tx.immediate, done, failed),
      exclusive: timed(tx.exclusive, done, failed),
    })
  }) as typeof sqlite.transaction
}
