import { Database } from 'bun:sqlite'
import { afterEach, describe, expect, spyOn, test } from 'bun:test'
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { observeQueries } from '../../src/db/client'
import { storageUnavailable } from '../../src/db/storage'
import { StorageUnavailable } from '../../src/shared/errors'
import { sqliteOf, captureLogs, listen, testApp, type TestApp } from '../support/app'
import { account, call, conversation, send, type Account } from '../support/http'
import { TestSocket } from '../support/ws'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

const freshDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'pneumatic-storage-'))
  dirs.push(dir)
  return dir
}

/** What `fn` throws. */
function caught(fn: () => unknown): unknown {
  try {
    fn()
  } catch (error) {
    return error
  }
  throw new Error('expected an error, nothing was thrown')
}

/** Overwrites the page that holds the root of `name` (a table or an index) with bytes no b-tree page has. */
function overwriteRootPage(path: string, name: string): void {
  const sqlite = new Database(path)
  // Every page into the file itself: a newer copy in the WAL would hide the overwrite.
  sqlite.run('PRAGMA wal_checkpoint(TRUNCATE)')
  const { rootpage } = sqlite.query<{ rootpage: number }, [string]>('SELECT rootpage FROM sqlite_schema WHERE name = ?').get(name)!
  const { page_size } = sqlite.query<{ page_size: number }, []>('PRAGMA page_size').get()!
  sqlite.close()
  const fd = openSync(path, 'r+')
  try {
    writeSync(fd, Buffer.alloc(page_size, 0xff), 0, page_size, (rootpage - 1) * page_size)
  } finally {
    closeSync(fd)
  }
}

describe('storageUnavailable: which driver errors say the storage failed', () => {
  test('real bun:sqlite errors of a full, read-only, corrupt, locked or missing file become one 503 storage_unavailable with Retry-After', () => {
    const dir = freshDir()
    const path = join(dir, 'a.db')
    const sqlite = new Database(path, { create: true })
    sqlite.run('PRAGMA journal_mode = WAL')
    sqlite.run('CREATE TABLE t (id INTEGER PRIMARY KEY, c TEXT)')
    sqlite.run('CREATE INDEX t_c ON t (c)')
    sqlite.run("INSERT INTO t (c) VALUES ('a')")

    const { page_count } = sqlite.query<{ page_count: number }, []>('PRAGMA page_count').get()!
    sqlite.run(`PRAGMA max_page_count = ${page_count}`)
    const full = caught(() => sqlite.run('INSERT INTO t (c) VALUES (?)', ['x'.repeat(100_000)]))
    sqlite.run('PRAGMA max_page_count = 1000000')

    sqlite.run('PRAGMA query_only = 1')
    const readOnly = caught(() => sqlite.run("INSERT INTO t (c) VALUES ('b')"))
    sqlite.run('PRAGMA query_only = 0')

    const holder = new Database(path)
    holder.run('BEGIN IMMEDIATE')
    sqlite.run('PRAGMA busy_timeout = 0')
    const locked = caught(() => sqlite.run('BEGIN IMMEDIATE'))
    holder.run('ROLLBACK')
    holder.close()
    sqlite.close()

    overwriteRootPage(path, 't_c')
    const corrupt = caught(() => new Database(path).query("SELECT id FROM t WHERE c = 'a'").all())
    writeFileSync(join(dir, 'notes.txt'), 'these are not the pages you are looking for')
    const notADatabase = caught(() => new Database(join(dir, 'notes.txt')).run('PRAGMA journal_mode = WAL'))
    mkdirSync(join(dir, 'folder'))
    const cannotOpen = caught(() => new Database(join(dir, 'folder')))

    const cases = { full, readOnly, locked, corrupt, notADatabase, cannotOpen }
    expect(Object.fromEntries(Object.entries(cases).map(([name, error]) => [name, (error as { code: string }).code]))).toEqual({
      full: 'SQLITE_FULL',
      readOnly: 'SQLITE_READONLY',
      locked: 'SQLITE_BUSY',
      corrupt: 'SQLITE_CORRUPT',
      notADatabase: 'SQLITE_NOTADB',
      cannotOpen: 'SQLITE_CANTOPEN',
    })
    expect(Object.fromEntries(Object.entries(cases).map(([name, error]) => [name, storageUnavailable(error)?.reason]))).toEqual({
      full: 'the database file is on a full disk',
      readOnly: 'the database file is read-only',
      locked: 'the database file is locked by another connection',
      corrupt: 'the database file is corrupt',
      notADatabase: 'the database file is not a SQLite database',
      cannotOpen: 'the database file cannot be opened',
    })
    const answer = storageUnavailable(full)!
    expect(answer).toBeInstanceOf(StorageUnavailable)
    expect(answer.cause).toBe(full)
    expect({ status: answer.status, retryAfterSeconds: answer.retryAfterSeconds, body: answer.toBody() }).toEqual({
      status: 503,
      retryAfterSeconds: 5,
      body: { error: { code: 'storage_unavailable', message: 'Storage is unavailable right now: try again shortly' } },
    })
  })

  test('extended codes count as their family, and the plain copy a failed message write carries back is read by its code', () => {
    expect(storageUnavailable({ name: 'SQLiteError', message: 'disk I/O error', code: 'SQLITE_IOERR_WRITE' })?.reason).toBe('the database file cannot be read or written (I/O error)')
    expect(storageUnavailable({ name: 'SQLiteError', message: 'database or disk is full', code: 'SQLITE_FULL' })?.reason).toBe('the database file is on a full disk')
  })

  test('errors about the request or the code are not storage failures', () => {
    const sqlite = new Database(':memory:')
    sqlite.run('CREATE TABLE t (id INTEGER PRIMARY KEY)')
    sqlite.run('INSERT INTO t VALUES (1)')
    const duplicate = caught(() => sqlite.run('INSERT INTO t VALUES (1)'))
    const typo = caught(() => sqlite.run('SELEC 1'))
    expect([storageUnavailable(duplicate), storageUnavailable(typo), storageUnavailable(new Error('boom')), storageUnavailable(null)]).toEqual([null, null, null, null])
    // Not by family name alone: a code that only starts like one is something else.
    expect(storageUnavailable({ code: 'SQLITE_FULLY_SOMETHING_ELSE' })).toBeNull()
  })
})

describe('the readiness probe', () => {
  test('a database that answers queries but refuses writes is not ready', async () => {
    await using t = await testApp()
    sqliteOf(t).sqlite.run('PRAGMA query_only = 1')
    expect(await call(t.app, 'GET', '/ready')).toMatchObject({ status: 503, body: { status: 'unavailable', reason: 'the database file is read-only' } })
    sqliteOf(t).sqlite.run('PRAGMA query_only = 0')
    expect(await call(t.app, 'GET', '/ready')).toMatchObject({ status: 200, body: { status: 'ready' } })
  })

  test('it commits a write to the readiness table, and a storm of polls within a second commits once', async () => {
    await using t = await testApp()
    const writes: string[] = []
    observeQueries(sqliteOf(t).sqlite, { statement: (operation) => void (operation === 'insert' && writes.push(operation)), transaction() {} })
    const clock = spyOn(performance, 'now').mockReturnValue(1_000_000)
    try {
      const replies = await Promise.all(Array.from({ length: 20 }, () => call(t.app, 'GET', '/ready')))
      expect(replies.map((r) => r.status)).toEqual(Array(20).fill(200))
    } finally {
      clock.mockRestore()
    }
    expect(writes).toHaveLength(1)
    expect(sqliteOf(t).sqlite.query('SELECT id, checked_at > 0 AS written FROM readiness').all()).toEqual([{ id: 1, written: 1 }])
  })
})

/** Alice and Bob, a conversation and two messages, on a database the app is then closed over. */
async function populated(): Promise<{ t: TestApp; alice: Account; conversationId: string; path: string }> {
  const t = await testApp()
  const alice = await account(t.app, 'alice')
  const bob = await account(t.app, 'bob')
  const { id: conversationId } = await conversation(t.app, alice, [bob], 'Team')
  for (const content of ['one', 'two']) expect((await send(t.app, alice, conversationId, content)).status).toBe(201)
  await t.deps.writer.close()
  sqliteOf(t).sqlite.close()
  return { t, alice, conversationId, path: join(t.dir, 'test.db') }
}

describe('a corrupt database file', () => {
  test('a table page overwritten while the server was stopped: /ready says so before any request, and requests that read it get 503 storage_unavailable, not 500', async () => {
    const before = await populated()
    overwriteRootPage(before.path, 'messages')
    const logs = captureLogs()
    await using t = await testApp({}, { dir: before.t.dir, logger: logs.logger })
    expect(await call(t.app, 'GET', '/ready')).toMatchObject({ status: 503, body: { status: 'unavailable', reason: 'the database file is corrupt' } })
    const history = await call(t.app, 'GET', `/conversations/${before.conversationId}/messages`, { token: before.alice.token })
    expect(history).toMatchObject({ status: 503, body: { error: { code: 'storage_unavailable' } } })
    expect(history.headers.get('retry-after')).toBe('5')
    expect(await send(t.app, before.alice, before.conversationId, 'three')).toMatchObject({ status: 503, body: { error: { code: 'storage_unavailable' } } })
    // What does not read the bad page still works, and nothing was an unhandled error.
    expect((await call(t.app, 'GET', '/users', { token: before.alice.token })).status).toBe(200)
    expect(logs.lines.filter((l) => l.msg === 'unhandled error')).toEqual([])
    expect(logs.lines.find((l) => l.msg === 'storage unavailable')).toMatchObject({ level: 'warn', reason: 'the database file is corrupt', err: { code: 'SQLITE_CORRUPT' } })
  })

  test('an index page the probe does not read: the request that meets it gets 503, and /ready reports the corruption from then on', async () => {
    const before = await populated()
    overwriteRootPage(before.path, 'messages_conversation_seq_idx')
    await using t = await testApp({}, { dir: before.t.dir })
    const history = await call(t.app, 'GET', `/conversations/${before.conversationId}/messages`, { token: before.alice.token })
    expect(history).toMatchObject({ status: 503, body: { error: { code: 'storage_unavailable' } } })
    for (let poll = 0; poll < 2; poll++) {
      expect(await call(t.app, 'GET', '/ready')).toMatchObject({ status: 503, body: { reason: 'the database file is corrupt' } })
    }
  })

  test('with the worker writer, the corruption its own connection meets is reported too: the send gets 503, and /ready reports it from then on', async () => {
    const before = await populated()
    overwriteRootPage(before.path, 'messages_message_id_sender_idx')
    await using t = await testApp({}, { dir: before.t.dir, writer: 'worker' })
    expect(await send(t.app, before.alice, before.conversationId, 'three')).toMatchObject({ status: 503, body: { error: { code: 'storage_unavailable' } } })
    expect(await call(t.app, 'GET', '/ready')).toMatchObject({ status: 503, body: { reason: 'the database file is corrupt' } })
  })

  test('a corrupt sessions table: a WebSocket upgrade and an authenticated request get 503 storage_unavailable, not 500 and not a 401 that would send the client to sign in again', async () => {
    const before = await populated()
    overwriteRootPage(before.path, 'sessions')
    await using t = await testApp({}, { dir: before.t.dir })
    const { http } = listen(t.app)
    expect(await call(t.app, 'GET', '/auth/me', { token: before.alice.token })).toMatchObject({ status: 503, body: { error: { code: 'storage_unavailable' } } })
    const upgrade = await fetch(`${http}/ws?token=${before.alice.token}`, {
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    })
    expect({ status: upgrade.status, retryAfter: upgrade.headers.get('retry-after'), body: await upgrade.json() }).toMatchObject({
      status: 503,
      retryAfter: '5',
      body: { error: { code: 'storage_unavailable' } },
    })
  })
})

describe('a WebSocket send the storage refuses', () => {
  test('is answered with a storage_unavailable error frame carrying its message_id; the socket stays open', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app, 'alice')
    const bob = await account(t.app, 'bob')
    const { id: conversationId } = await conversation(t.app, alice, [bob])
    using socket = await TestSocket.open(`${ws}?token=${alice.token}`)
    sqliteOf(t).sqlite.run('PRAGMA query_only = 1')
    socket.send({ type: 'message', message_id: 'refused-1', conversation_id: conversationId, content: 'hello' })
    expect(await socket.next((f) => f.type === 'error')).toMatchObject({ error: { code: 'storage_unavailable' }, message_id: 'refused-1' })
    sqliteOf(t).sqlite.run('PRAGMA query_only = 0')
    socket.send({ type: 'message', message_id: 'refused-1', conversation_id: conversationId, content: 'hello' })
    expect(await socket.next((f) => f.type === 'message')).toMatchObject({ message: { message_id: 'refused-1', seq: 1 } })
  })
})
