import { describe, expect, test } from 'bun:test'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { drizzle } from 'drizzle-orm/postgres-js'
import { migrate } from 'drizzle-orm/postgres-js/migrator'
import postgres from 'postgres'
import { openPostgresStore } from '../../src/db/store.postgres'
import { search } from '../../src/search/service'
import { freshDatabase, POSTGRES_ADMIN_URL, skipPostgresTests } from '../support/postgres'

const MIGRATIONS = join(import.meta.dir, '..', '..', 'drizzle', 'postgres')

/** A PostgreSQL database as a server of an earlier release left it: only the migrations before `tag` applied. */
async function migratedUpTo(url: string, tag: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pneumatic-pg-migrations-'))
  try {
    const journal = JSON.parse(readFileSync(join(MIGRATIONS, 'meta', '_journal.json'), 'utf8')) as { entries: { tag: string }[] }
    journal.entries = journal.entries.slice(0, journal.entries.findIndex((e) => e.tag === tag))
    mkdirSync(join(dir, 'meta'))
    writeFileSync(join(dir, 'meta', '_journal.json'), JSON.stringify(journal))
    for (const { tag: earlier } of journal.entries) cpSync(join(MIGRATIONS, `${earlier}.sql`), join(dir, `${earlier}.sql`))
    const client = postgres(url, { max: 1, onnotice: () => {} })
    try {
      await migrate(drizzle({ client }), { migrationsFolder: dir })
    } finally {
      await client.end({ timeout: 1 })
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe.skipIf(skipPostgresTests)('PostgreSQL migration 0004: the full-text index of messages', () => {
  test('on PostgreSQL, an upgraded database finds the messages it already held, by their current text', async () => {
    await using fresh = await freshDatabase()
    await migratedUpTo(fresh.url, '0004_search')
    const old = postgres(fresh.url, { max: 1, onnotice: () => {} })
    try {
      await old`INSERT INTO users (id, username, password_hash, created_at) VALUES ('u1', 'ada', 'x', 1), ('u2', 'bob', 'x', 1), ('u3', 'cy', 'x', 1)`
      await old`INSERT INTO conversations (id, title, is_group, created_by, created_at, last_seq) VALUES ('c1', 'Team', true, 'u1', 1, 3), ('c2', 'Other', true, 'u3', 1, 1)`
      await old`INSERT INTO conversation_members (conversation_id, user_id, joined_at) VALUES ('c1', 'u1', 1), ('c1', 'u2', 1), ('c2', 'u3', 1)`
      await old`INSERT INTO messages (id, conversation_id, seq, sender_id, message_id, content, created_at, edited_at, deleted_at) VALUES
        ('m1', 'c1', 1, 'u1', 'k1', 'The deployment of the Café menu', 1000, NULL, NULL),
        ('m2', 'c1', 2, 'u2', 'k2', 'edited: the deploy is done', 2000, 2500, NULL),
        ('m3', 'c1', 3, 'u1', 'k3', '', 3000, NULL, 3500),
        ('m5', 'c2', 1, 'u3', 'k5', 'deployment elsewhere', 5000, NULL, NULL)`
      expect(await old`SELECT indexname FROM pg_indexes WHERE indexname = 'messages_search_idx'`).toHaveLength(0)
    } finally {
      await old.end({ timeout: 1 })
    }

    const store = await openPostgresStore(fresh.url, 2)
    try {
      const deps = { store, config: { searchTimeoutMs: 5000 } }
      const ada = { id: 'u1', username: 'ada', full_name: null }
      expect((await search(deps, ada, { q: 'deplo' })).results.map((r) => r.message.id)).toEqual(['m2', 'm1'])
      expect((await search(deps, ada, { q: 'cafe' })).results.map((r) => r.snippet)).toEqual(['The deployment of the <mark>Café</mark> menu'])
    } finally {
      await store.close()
    }
  })
})

describe.skipIf(skipPostgresTests)('the search migration without a superuser', () => {
  test('on PostgreSQL, a database owned by a role that is no superuser migrates (unaccent is a trusted extension) and searches', async () => {
    const role = `pneumatic_owner_${Date.now().toString(36)}`
    const admin = postgres(POSTGRES_ADMIN_URL, { max: 1, onnotice: () => {} })
    await admin.unsafe(`CREATE ROLE "${role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE`)
    try {
      await using fresh = await freshDatabase()
      await admin.unsafe(`ALTER DATABASE "${fresh.name}" OWNER TO "${role}"`)
      const url = new URL(fresh.url)
      url.username = role
      const store = await openPostgresStore(url.toString(), 1)
      try {
        const [owner] = await admin.unsafe<{ superuser: boolean }[]>(`SELECT rolsuper AS superuser FROM pg_roles WHERE rolname = '${role}'`)
        expect(owner).toEqual({ superuser: false })
        expect((await search({ store, config: { searchTimeoutMs: 5000 } }, { id: 'nobody', username: 'nobody', full_name: null }, { q: 'anything' })).results).toEqual([])
      } finally {
        await store.close()
      }
    } finally {
      await admin.unsafe(`DROP ROLE IF EXISTS "${role}"`).catch(() => {})
      await admin.end({ timeout: 1 })
    }
  })
})
