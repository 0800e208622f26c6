import { Database } from 'bun:sqlite'
import { afterEach, describe, expect, test } from 'bun:test'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { drizzle } from 'drizzle-orm/bun-sqlite'
import { migrate } from 'drizzle-orm/bun-sqlite/migrator'
import { refresh } from '../../src/auth/service'
import { createTokens } from '../../src/auth/tokens'
import * as conversations from '../../src/conversations/service'
import { openDatabase } from '../../src/db/client'
import { openSqliteStore } from '../../src/db/store.sqlite'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator'
import postgres from 'postgres'
import { openPostgresStore } from '../../src/db/store.postgres'
import { search } from '../../src/search/service'
import { TEST_SECRET } from '../support/app'
import { freshDatabase, POSTGRES_ADMIN_URL, skipPostgresTests } from '../support/postgres'

const MIGRATIONS = join(import.meta.dir, '..', '..', 'drizzle', 'sqlite')
const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** A migrations folder as an earlier release shipped it: the first `count` of `folder`'s migrations. */
function earlierMigrations(folder: string, count: number): { dir: string; earlier: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pneumatic-migrations-'))
  dirs.push(dir)
  const journal = JSON.parse(readFileSync(join(folder, 'meta', '_journal.json'), 'utf8')) as { entries: { tag: string }[] }
  const earlier = join(dir, 'drizzle')
  mkdirSync(join(earlier, 'meta'), { recursive: true })
  journal.entries = journal.entries.slice(0, count)
  writeFileSync(join(earlier, 'meta', '_journal.json'), JSON.stringify(journal))
  for (const { tag } of journal.entries) copyFileSync(join(folder, `${tag}.sql`), join(earlier, `${tag}.sql`))
  return { dir, earlier }
}

/** A database file as a server of an earlier release left it: only the first `count` migrations applied. */
function databaseAt(count: number): { dir: string; path: string } {
  const { dir, earlier } = earlierMigrations(MIGRATIONS, count)
  const path = join(dir, 'pneumatic.db')
  const sqlite = new Database(path, { create: true })
  migrate(drizzle({ client: sqlite }), { migrationsFolder: earlier })
  sqlite.close()
  return { dir, path }
}

const indexColumns = (sqlite: Database, index: string) => (sqlite.query(`PRAGMA index_info(${index})`).all() as { name: string }[]).map((c) => c.name)

describe('the SQLite migrations folder moved to drizzle/sqlite', () => {
  test('a database fully migrated from the old drizzle/ folder applies nothing again and keeps its rows', () => {
    const journal = JSON.parse(readFileSync(join(MIGRATIONS, 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] }
    const { path } = databaseAt(journal.entries.length)
    const old = new Database(path)
    old.run("INSERT INTO users (id, username, password_hash, created_at) VALUES ('u1', 'ada', 'x', 1)")
    const applied = old.query('SELECT id, hash, created_at FROM __drizzle_migrations ORDER BY id').all()
    old.close()

    const { sqlite, close } = openDatabase(path)
    try {
      expect(sqlite.query('SELECT id, hash, created_at FROM __drizzle_migrations ORDER BY id').all()).toEqual(applied)
      expect(sqlite.query('SELECT id, username FROM users').all()).toEqual([{ id: 'u1', username: 'ada' }])
    } finally {
      close()
    }
  })
})

describe('migration 0002: the idempotency index is keyed message_id first', () => {
  test('a database of the previous release keeps its messages, gets the new index, and still refuses a second message with the same key', () => {
    const { path } = databaseAt(2)
    const old = new Database(path)
    old.run("INSERT INTO users (id, username, password_hash, created_at) VALUES ('u1', 'ada', 'x', 1), ('u2', 'bob', 'x', 1)")
    old.run("INSERT INTO conversations (id, is_group, created_by, created_at, last_seq) VALUES ('c1', 0, 'u1', 1, 2)")
    old.run("INSERT INTO messages (id, conversation_id, seq, sender_id, message_id, content, created_at) VALUES ('m1', 'c1', 1, 'u1', 'k1', 'hello', 1), ('m2', 'c1', 2, 'u2', 'k1', 'hi', 2)")
    expect(indexColumns(old, 'messages_sender_message_id_idx')).toEqual(['sender_id', 'message_id'])
    old.close()

    const { sqlite, close } = openDatabase(path)
    try {
      const indexes = sqlite.query("SELECT name, \"unique\" FROM pragma_index_list('messages') WHERE origin = 'c' ORDER BY name").all()
      expect(indexes).toEqual([
        { name: 'messages_conversation_seq_idx', unique: 1 },
        { name: 'messages_message_id_sender_idx', unique: 1 },
      ])
      expect(indexColumns(sqlite, 'messages_message_id_sender_idx')).toEqual(['message_id', 'sender_id'])
      expect(sqlite.query('SELECT id, sender_id, message_id, content FROM messages ORDER BY seq').all()).toEqual([
        { id: 'm1', sender_id: 'u1', message_id: 'k1', content: 'hello' },
        { id: 'm2', sender_id: 'u2', message_id: 'k1', content: 'hi' },
      ])
      // Unique per sender, as before: the same key from the same sender cannot be stored twice.
      expect(() =>
        sqlite.run("INSERT INTO messages (id, conversation_id, seq, sender_id, message_id, content, created_at) VALUES ('m3', 'c1', 3, 'u1', 'k1', 'again', 3)"),
      ).toThrow(/UNIQUE constraint failed: messages.message_id, messages.sender_id/)
    } finally {
      close()
    }
  })
})

describe('migration 0003: a session remembers the refresh token it replaced last', () => {
  test("a session of the previous release keeps its refresh token, which then rotates with the reuse grace", async () => {
    const { path } = databaseAt(3)
    const old = new Database(path)
    old.run("INSERT INTO users (id, username, password_hash, created_at) VALUES ('u1', 'ada', 'x', 1)")
    old.run("INSERT INTO sessions (id, user_id, current_jti, created_at) VALUES ('s1', 'u1', 'j1', 1)")
    old.close()

    const store = openSqliteStore(path)
    const { sqlite } = store
    try {
      expect(sqlite.query('SELECT id, current_jti, previous_jti, rotated_at, revoked_at FROM sessions').all()).toEqual([
        { id: 's1', current_jti: 'j1', previous_jti: null, rotated_at: null, revoked_at: null },
      ])
      const tokens = createTokens({ secret: TEST_SECRET, accessTtlSeconds: 60, refreshTtlSeconds: 3600 })
      const deps = { store, tokens, bus: { publish() {} }, config: { refreshReuseGraceSeconds: 30 } }
      const issued = await tokens.issuePair({ userId: 'u1', sessionId: 's1', version: 0 }, { refreshJti: 'j1', issuedAt: Date.now() })
      const next = await refresh(deps, issued.refresh_token)
      expect(await refresh(deps, issued.refresh_token)).toEqual(next)
      expect(sqlite.query('SELECT previous_jti, revoked_at FROM sessions').get()).toEqual({ previous_jti: 'j1', revoked_at: null })
    } finally {
      await store.close()
    }
  })
})

describe('migration 0004: the readiness table', () => {
  test('a database of the previous release keeps its data, gets the table, and is ready: the probe commits its row', async () => {
    const { path } = databaseAt(4)
    const old = new Database(path)
    old.run("INSERT INTO users (id, username, password_hash, created_at) VALUES ('u1', 'ada', 'x', 1)")
    expect(old.query("SELECT name FROM sqlite_schema WHERE name = 'readiness'").all()).toEqual([])
    old.close()

    const { sqlite, storage, close } = openDatabase(path)
    try {
      await storage.probe()
      expect(sqlite.query('SELECT id, checked_at > 0 AS written FROM readiness').all()).toEqual([{ id: 1, written: 1 }])
      expect(sqlite.query('SELECT id, username FROM users').all()).toEqual([{ id: 'u1', username: 'ada' }])
    } finally {
      close()
    }
  })
})

describe('migrations 0005–0007: each member row carries its conversation\'s activity, indexed per user', () => {
  test('a database of the previous release gets the column filled from its conversations (to the second), the new index, and lists in activity order', async () => {
    const { path } = databaseAt(5)
    const old = new Database(path)
    old.run("INSERT INTO users (id, username, password_hash, created_at) VALUES ('u1', 'ada', 'x', 1), ('u2', 'bob', 'x', 1)")
    // c1: created first, a message later than everything; c2: created last, no message; c3: in between.
    old.run(
      "INSERT INTO conversations (id, title, is_group, created_by, created_at, last_seq, last_message_at) VALUES ('c1', 'one', 1, 'u1', 1000, 1, 9500), ('c2', 'two', 1, 'u1', 5999, 0, NULL), ('c3', 'three', 1, 'u2', 3001, 0, NULL)",
    )
    old.run("INSERT INTO conversation_members (conversation_id, user_id, joined_at) VALUES ('c1', 'u1', 1000), ('c1', 'u2', 1000), ('c2', 'u1', 5000), ('c3', 'u2', 3000), ('c3', 'u1', 3000)")
    expect(indexColumns(old, 'conversation_members_user_idx')).toEqual(['user_id'])
    old.close()

    const store = openSqliteStore(path)
    const { sqlite } = store
    try {
      expect(sqlite.query('SELECT conversation_id, user_id, last_activity_at FROM conversation_members ORDER BY rowid').all()).toEqual([
        { conversation_id: 'c1', user_id: 'u1', last_activity_at: 9000 },
        { conversation_id: 'c1', user_id: 'u2', last_activity_at: 9000 },
        { conversation_id: 'c2', user_id: 'u1', last_activity_at: 5000 },
        { conversation_id: 'c3', user_id: 'u2', last_activity_at: 3000 },
        { conversation_id: 'c3', user_id: 'u1', last_activity_at: 3000 },
      ])
      const indexes = sqlite.query("SELECT name FROM pragma_index_list('conversation_members') WHERE origin = 'c' ORDER BY name").all()
      expect(indexes).toEqual([{ name: 'conversation_members_user_activity_idx' }])
      expect(indexColumns(sqlite, 'conversation_members_user_activity_idx')).toEqual(['user_id', 'last_activity_at', 'conversation_id'])
      const ada = { id: 'u1', username: 'ada', full_name: null }
      expect((await conversations.pageFor(store, ada)).conversations.map((c) => c.id)).toEqual(['c1', 'c2', 'c3'])
      expect((await conversations.pageFor(store, { ...ada, id: 'u2' })).conversations.map((c) => c.id)).toEqual(['c1', 'c3'])
    } finally {
      await store.close()
    }
  })
})

describe('migration 0011: the full-text index of messages', () => {
  test('an upgraded database finds the messages it already held, by their current text and never a deleted one, and keeps the index in step after', async () => {
    const { path } = databaseAt(11)
    const old = new Database(path)
    old.run("INSERT INTO users (id, username, password_hash, created_at) VALUES ('u1', 'ada', 'x', 1), ('u2', 'bob', 'x', 1), ('u3', 'cy', 'x', 1)")
    old.run("INSERT INTO conversations (id, title, is_group, created_by, created_at, last_seq) VALUES ('c1', 'Team', 1, 'u1', 1, 4), ('c2', 'Other', 1, 'u3', 1, 1)")
    old.run("INSERT INTO conversation_members (conversation_id, user_id, joined_at) VALUES ('c1', 'u1', 1), ('c1', 'u2', 1), ('c2', 'u3', 1)")
    old.run(`INSERT INTO messages (id, conversation_id, seq, sender_id, message_id, content, created_at, edited_at, deleted_at) VALUES
      ('m1', 'c1', 1, 'u1', 'k1', 'The deployment of the Café menu', 1000, NULL, NULL),
      ('m2', 'c1', 2, 'u2', 'k2', 'edited: the deploy is done', 2000, 2500, NULL),
      ('m3', 'c1', 3, 'u1', 'k3', '', 3000, NULL, 3500),
      ('m4', 'c1', 4, 'u2', 'k4', 'lunch?', 4000, NULL, NULL),
      ('m5', 'c2', 1, 'u3', 'k5', 'deployment elsewhere', 5000, NULL, NULL)`)
    expect(old.query("SELECT name FROM sqlite_schema WHERE name = 'messages_fts'").all()).toEqual([])
    old.close()

    const store = openSqliteStore(path)
    const deps = { store, config: { searchTimeoutMs: 5000 } }
    const ada = { id: 'u1', username: 'ada', full_name: null }
    const ids = async (q: string) => (await search(deps, ada, { q })).results.map((r) => r.message.id)
    try {
      expect(await ids('deplo')).toEqual(['m2', 'm1'])
      expect(await ids('cafe')).toEqual(['m1'])
      expect((await search(deps, ada, { q: 'cafe' })).results[0]!.snippet).toBe('The deployment of the <mark>Café</mark> menu')
      // After the upgrade the triggers keep it: an old message edited and another deleted.
      await store.messages.change({ type: 'message_edited', id: 'm4', content: 'lunch after the deployment', userId: 'u2', at: 6000 })
      await store.messages.change({ type: 'message_deleted', id: 'm1', userId: 'u1', at: 7000 })
      expect(await ids('deplo')).toEqual(['m4', 'm2'])
      expect(await ids('cafe')).toEqual([])
      // FTS5 compares its index with the messages' content, and throws (SQLITE_CORRUPT_VTAB) if they differ.
      expect(() => store.sqlite.run("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")).not.toThrow()
    } finally {
      await store.close()
    }
  })
})

describe('migrations 0009–0010: read positions start at what was there', () => {
  test('members of a database of the previous release have read every message already sent: an upgrade marks nothing unread', async () => {
    const { path } = databaseAt(9)
    const old = new Database(path)
    old.run("INSERT INTO users (id, username, password_hash, created_at) VALUES ('u1', 'ada', 'x', 1), ('u2', 'bob', 'x', 1)")
    old.run("INSERT INTO conversations (id, title, is_group, created_by, created_at, last_seq, last_event_seq, last_message_at) VALUES ('c1', 'one', 1, 'u1', 1000, 2, 2, 2000)")
    old.run("INSERT INTO conversation_members (conversation_id, user_id, joined_at) VALUES ('c1', 'u1', 1000), ('c1', 'u2', 1000)")
    old.run("INSERT INTO messages (id, conversation_id, seq, sender_id, message_id, content, created_at) VALUES ('m1', 'c1', 1, 'u1', 'a', 'hi', 1500), ('m2', 'c1', 2, 'u1', 'b', 'there', 2000)")
    old.close()

    const store = openSqliteStore(path)
    try {
      const bob = { id: 'u2', username: 'bob', full_name: null }
      expect((await conversations.pageFor(store, bob)).conversations.map((c) => [c.id, c.read])).toEqual([['c1', { lastReadSeq: 2, unreadCount: 0 }]])
      expect(await store.conversations.reads('c1')).toEqual([
        { userId: 'u1', seq: 2 },
        { userId: 'u2', seq: 2 },
      ])
    } finally {
      await store.close()
    }
  })
})

describe.skipIf(skipPostgresTests)('PostgreSQL migrations 0002–0003: read positions start at what was there', () => {
  test('members of a database of the previous release have read every message already sent', async () => {
    await using database = await freshDatabase()
    const { earlier } = earlierMigrations(join(import.meta.dir, '..', '..', 'drizzle', 'postgres'), 2)
    const sql = postgres(database.url, { max: 1, onnotice: () => {} })
    try {
      await migratePostgres(drizzlePostgres(sql), { migrationsFolder: earlier })
      await sql.unsafe("INSERT INTO users (id, username, password_hash, created_at) VALUES ('u1', 'ada', 'x', 1), ('u2', 'bob', 'x', 1)")
      await sql.unsafe("INSERT INTO conversations (id, title, is_group, created_by, created_at, last_seq, last_event_seq, last_message_at) VALUES ('c1', 'one', true, 'u1', 1000, 2, 2, 2000)")
      await sql.unsafe("INSERT INTO conversation_members (conversation_id, user_id, joined_at) VALUES ('c1', 'u1', 1000), ('c1', 'u2', 1000)")
      await sql.unsafe("INSERT INTO messages (id, conversation_id, seq, sender_id, message_id, content, created_at) VALUES ('m1', 'c1', 1, 'u1', 'a', 'hi', 1500), ('m2', 'c1', 2, 'u1', 'b', 'there', 2000)")
    } finally {
      await sql.end({ timeout: 1 })
    }
    const store = await openPostgresStore(database.url, 2)
    try {
      const bob = { id: 'u2', username: 'bob', full_name: null }
      expect((await conversations.pageFor(store, bob)).conversations.map((c) => [c.id, c.read])).toEqual([['c1', { lastReadSeq: 2, unreadCount: 0 }]])
    } finally {
      await store.close()
    }
  })
})

describe.skipIf(skipPostgresTests)('PostgreSQL migration 0004: the full-text index of messages', () => {
  test('an upgraded PostgreSQL database finds the messages it already held, by their current text', async () => {
    await using database = await freshDatabase()
    const { earlier } = earlierMigrations(join(import.meta.dir, '..', '..', 'drizzle', 'postgres'), 4)
    const sql = postgres(database.url, { max: 1, onnotice: () => {} })
    try {
      await migratePostgres(drizzlePostgres(sql), { migrationsFolder: earlier })
      await sql.unsafe("INSERT INTO users (id, username, password_hash, created_at) VALUES ('u1', 'ada', 'x', 1), ('u2', 'bob', 'x', 1), ('u3', 'cy', 'x', 1)")
      await sql.unsafe("INSERT INTO conversations (id, title, is_group, created_by, created_at, last_seq) VALUES ('c1', 'Team', true, 'u1', 1, 3), ('c2', 'Other', true, 'u3', 1, 1)")
      await sql.unsafe("INSERT INTO conversation_members (conversation_id, user_id, joined_at) VALUES ('c1', 'u1', 1), ('c1', 'u2', 1), ('c2', 'u3', 1)")
      await sql.unsafe(`INSERT INTO messages (id, conversation_id, seq, sender_id, message_id, content, created_at, edited_at, deleted_at) VALUES
        ('m1', 'c1', 1, 'u1', 'k1', 'The deployment of the Café menu', 1000, NULL, NULL),
        ('m2', 'c1', 2, 'u2', 'k2', 'edited: the deploy is done', 2000, 2500, NULL),
        ('m3', 'c1', 3, 'u1', 'k3', '', 3000, NULL, 3500),
        ('m5', 'c2', 1, 'u3', 'k5', 'deployment elsewhere', 5000, NULL, NULL)`)
      expect(await sql.unsafe("SELECT indexname FROM pg_indexes WHERE indexname = 'messages_search_idx'")).toHaveLength(0)
    } finally {
      await sql.end({ timeout: 1 })
    }
    const store = await openPostgresStore(database.url, 2)
    try {
      const deps = { store, config: { searchTimeoutMs: 5000 } }
      const ada = { id: 'u1', username: 'ada', full_name: null }
      expect((await search(deps, ada, { q: 'deplo' })).results.map((r) => r.message.id)).toEqual(['m2', 'm1'])
      expect((await search(deps, ada, { q: 'cafe' })).results.map((r) => r.snippet)).toEqual(['The deployment of the <mark>Café</mark> menu'])
    } finally {
      await store.close()
    }
  })

  test('a PostgreSQL database owned by a role that is no superuser migrates (unaccent is a trusted extension) and searches', async () => {
    const role = `pneumatic_owner_${Date.now().toString(36)}`
    const admin = postgres(POSTGRES_ADMIN_URL, { max: 1, onnotice: () => {} })
    await admin.unsafe(`CREATE ROLE "${role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE`)
    try {
      await using database = await freshDatabase()
      await admin.unsafe(`ALTER DATABASE "${database.name}" OWNER TO "${role}"`)
      const url = new URL(database.url)
      url.username = role
      const store = await openPostgresStore(url.toString(), 1)
      try {
        expect(await admin.unsafe(`SELECT rolsuper FROM pg_roles WHERE rolname = '${role}'`)).toEqual([{ rolsuper: false }] as never)
        const nobody = { id: 'nobody', username: 'nobody', full_name: null }
        expect((await search({ store, config: { searchTimeoutMs: 5000 } }, nobody, { q: 'anything' })).results).toEqual([])
      } finally {
        await store.close()
      }
    } finally {
      await admin.unsafe(`DROP ROLE IF EXISTS "${role}"`).catch(() => {})
      await admin.end({ timeout: 1 })
    }
  })
})
