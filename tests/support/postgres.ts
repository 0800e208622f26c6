import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import postgres from 'postgres'

/**
 * The PostgreSQL the tests use: the machine's (127.0.0.1:5432, trust auth, user postgres) unless
 * PNEUMATIC_TEST_POSTGRES names another server's maintenance database. Each test file gets a
 * fresh database of its own there, dropped when it is done.
 */
export const POSTGRES_ADMIN_URL = process.env.PNEUMATIC_TEST_POSTGRES || 'postgres://postgres@127.0.0.1:5432/postgres'

async function reachable(): Promise<boolean> {
  const admin = postgres(POSTGRES_ADMIN_URL, { max: 1, connect_timeout: 3, onnotice: () => {} })
  try {
    await admin`SELECT 1`
    return true
  } catch {
    return false
  } finally {
    await admin.end({ timeout: 1 })
  }
}

const postgresMissing = !(await reachable())

/** Skip tests that need PostgreSQL when it is not running here; under CI=true they fail instead. */
export const skipPostgresTests = postgresMissing && process.env.CI !== 'true'

if (skipPostgresTests) {
  console.warn(`[PostgreSQL tests] SKIPPED: nothing answers at ${POSTGRES_ADMIN_URL}; start PostgreSQL or set PNEUMATIC_TEST_POSTGRES. With CI=true these tests fail instead.`)
}

export type FreshDatabase = { url: string; name: string; [Symbol.asyncDispose](): Promise<void> }

/** A new, empty database on the test server, dropped (connections and all) on dispose. */
export async function freshDatabase(prefix = 'pneumatic_test', template?: string): Promise<FreshDatabase> {
  if (postgresMissing) throw new Error(`PostgreSQL is not reachable at ${POSTGRES_ADMIN_URL} and CI=true, so the PostgreSQL tests fail rather than skip`)
  const name = `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  const admin = postgres(POSTGRES_ADMIN_URL, { max: 1, onnotice: () => {} })
  try {
    await admin.unsafe(`CREATE DATABASE "${name}"${template ? ` TEMPLATE "${template}"` : ''}`)
  } finally {
    await admin.end()
  }
  const url = new URL(POSTGRES_ADMIN_URL)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    name,
    async [Symbol.asyncDispose]() {
      const dropper = postgres(POSTGRES_ADMIN_URL, { max: 1, onnotice: () => {} })
      try {
        await dropper.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
      } finally {
        await dropper.end()
      }
    },
  }
}

let template: Promise<string> | undefined

/**
 * A database holding the schema of this checkout's migrations, made once per migration set and
 * kept (its name carries a hash of drizzle/postgres/): each test app copies it (CREATE DATABASE …
 * TEMPLATE), much faster than migrating every one afresh. Made under an advisory lock, so test
 * processes starting at once make it once.
 */
function migratedTemplate(): Promise<string> {
  template ??= (async () => {
    const { Glob } = await import('bun')
    const dir = join(import.meta.dir, '..', '..', 'drizzle', 'postgres')
    const hash = new Bun.CryptoHasher('sha256')
    for (const file of [...new Glob('**/*').scanSync(dir)].sort()) hash.update(file).update(readFileSync(join(dir, file)))
    const name = `pneumatic_template_${hash.digest('hex').slice(0, 16)}`
    const admin = postgres(POSTGRES_ADMIN_URL, { max: 1, onnotice: () => {} })
    try {
      await admin`SELECT pg_advisory_lock(7310598276650012)`
      const [exists] = await admin`SELECT 1 FROM pg_database WHERE datname = ${name}`
      if (!exists) {
        const building = `${name}_building`
        await admin.unsafe(`DROP DATABASE IF EXISTS "${building}" WITH (FORCE)`)
        await admin.unsafe(`CREATE DATABASE "${building}"`)
        const url = new URL(POSTGRES_ADMIN_URL)
        url.pathname = `/${building}`
        const { openPostgres } = await import('../../src/db/postgres/connection')
        await (await openPostgres(url.toString(), { poolSize: 1 })).close()
        await admin.unsafe(`ALTER DATABASE "${building}" RENAME TO "${name}"`)
      }
    } finally {
      await admin`SELECT pg_advisory_unlock(7310598276650012)`.catch(() => {})
      await admin.end({ timeout: 1 })
    }
    return name
  })()
  return template
}

/** A fresh database with the schema already in place (see migratedTemplate), dropped on dispose. */
export async function freshMigratedDatabase(prefix = 'pneumatic_test'): Promise<FreshDatabase> {
  return freshDatabase(prefix, await migratedTemplate())
}
