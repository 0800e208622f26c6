import { join } from 'node:path'
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js'
import { migrate } from 'drizzle-orm/postgres-js/migrator'
import postgres from 'postgres'
import { ConfigError, maskedUrl } from '../../config'
import * as schema from './schema'

/** `$client` is the object drizzle sends through (see openPostgres), not the pool itself. */
export type PostgresDb = PostgresJsDatabase<typeof schema> & { $client: postgres.Sql }

export type PostgresHandle = { sql: postgres.Sql; db: PostgresDb; close(): Promise<void> }

const MIGRATIONS = join(import.meta.dir, '..', '..', '..', 'drizzle', 'postgres')

/** The session-level advisory lock every node takes to migrate, so one migrates and the others wait. */
const MIGRATION_LOCK = 7_310_598_276_650_011 // any fixed bigint the application owns; this one spells nothing

/** How long a node waits for a server that does not answer, at start-up and on every reconnect. */
const CONNECT_TIMEOUT_SECONDS = 10

/**
 * The options of every client: int8 (bigint columns, count(*)) parsed to a number, as the schema's
 * times and counters are epoch milliseconds and counts well within 2^53; notices (such as "schema
 * already exists, skipping" while migrating) are not ours to print.
 */
function clientOptions(max: number): postgres.Options<{ bigint: postgres.PostgresType<number> }> {
  return {
    max,
    onnotice: () => {},
    connect_timeout: CONNECT_TIMEOUT_SECONDS,
    types: { bigint: { to: 20, from: [20], serialize: (value: number) => String(value), parse: (value: string) => Number(value) } },
  }
}

/**
 * Connects to PostgreSQL and applies pending migrations, with a pool of `poolSize` connections for
 * the server. Migrations run on a client of their own while it holds a session-level advisory lock
 * on a reserved connection: several nodes starting at once on a fresh database migrate one after
 * the other, and the later ones find nothing left to do. (drizzle's migrator needs transactions,
 * which a reserved connection cannot begin, so the lock and the migration need two connections;
 * taking both from the server's pool would wait forever with a pool of one.)
 *
 * A server that cannot be reached, refuses the login, or has no such database is refused with a
 * ConfigError naming DATABASE_URL, the URL with its password masked, and the reason.
 */
export async function openPostgres(url: string, options: { poolSize: number }): Promise<PostgresHandle> {
  try {
    await migrateUnderLock(url)
  } catch (error) {
    throw openFailure(url, error)
  }
  const sql = postgres(url, clientOptions(options.poolSize)) as unknown as postgres.Sql
  // drizzle gets an object of its own in front of the pool, so observePostgres can time what drizzle
  // sends (its unsafe and begin) without touching the pool's own internal calls.
  const client = Object.create(sql) as postgres.Sql
  const db = drizzle({ client, schema })
  return { sql, db, close: () => sql.end({ timeout: 5 }) }
}

async function migrateUnderLock(url: string): Promise<void> {
  const migrator = postgres(url, clientOptions(2))
  try {
    const lock = await migrator.reserve()
    try {
      await lock`SELECT pg_advisory_lock(${MIGRATION_LOCK}::bigint)`
      try {
        await migrate(drizzle({ client: migrator }), { migrationsFolder: MIGRATIONS })
      } finally {
        // A lock whose connection died went with it; the migration's own error is the one to tell.
        await lock`SELECT pg_advisory_unlock(${MIGRATION_LOCK}::bigint)`.catch(() => {})
      }
    } finally {
      lock.release()
    }
  } finally {
    await migrator.end({ timeout: 5 })
  }
}

type Coded = { code?: unknown; message?: unknown; name?: unknown }

/** Why opening failed, in words, for the errors that say the database cannot be used as configured. */
function refusal(error: unknown): string | null {
  const { code, message } = (error ?? {}) as Coded
  if (typeof code !== 'string') return null
  const said = typeof message === 'string' ? message.replace(/\s+/g, ' ').trim() : String(error)
  if (code === 'ECONNREFUSED') return `cannot be reached: connection refused (${said})`
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') return `cannot be reached: its host name does not resolve (${said})`
  if (code === 'CONNECT_TIMEOUT' || code === 'ETIMEDOUT') return `cannot be reached: no answer within ${CONNECT_TIMEOUT_SECONDS} s`
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ECONNRESET' || code.startsWith('CONNECTION_')) return `cannot be reached (${said})`
  if (code.startsWith('28')) return `refused the login: ${said}`
  if (code === '3D000') return `names a database that does not exist: ${said}`
  if (code === '42501') return `refused a migration: ${said}`
  if (/^(08|53|57P0|58)/.test(code)) return `cannot be used: ${said}`
  return null
}

/** The start-up refusal for an error met while connecting and migrating; anything else as it is. */
function openFailure(url: string, error: unknown): unknown {
  const reason = refusal(error)
  return reason === null ? error : new ConfigError('DATABASE_URL', `points to ${maskedUrl(url)}, which ${reason}`)
}
