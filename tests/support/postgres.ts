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
export async function freshDatabase(prefix = 'pneumatic_test'): Promise<FreshDatabase> {
  if (postgresMissing) throw new Error(`PostgreSQL is not reachable at ${POSTGRES_ADMIN_URL} and CI=true, so the PostgreSQL tests fail rather than skip`)
  const name = `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  const admin = postgres(POSTGRES_ADMIN_URL, { max: 1, onnotice: () => {} })
  try {
    await admin.unsafe(`CREATE DATABASE "${name}"`)
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
