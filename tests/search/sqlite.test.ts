import { Database } from 'bun:sqlite'
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { search } from '../../src/search/service'
import * as users from '../../src/users/service'
import { onPostgres, sqliteOf, testApp, type TestApp } from '../support/app'
import { account, call, conversation, send, type Account } from '../support/http'
import { plansOf, recordStatements } from '../support/query-plans'

/** What only SQLite has: the FTS5 table's query plan, its shadow tables in the file, VACUUM. */

recordStatements()

describe.skipIf(onPostgres)('search on SQLite', () => {
  let t: TestApp
  let alice: Account
  let roomId: string

  beforeAll(async () => {
    t = await testApp()
    alice = await account(t.app)
    const bob = await account(t.app)
    roomId = (await conversation(t.app, alice, [bob])).id
    for (let i = 0; i < 5; i++) expect((await send(t.app, i % 2 ? bob : alice, roomId, `release notes ${i}`)).status).toBe(201)
  })
  afterAll(() => t[Symbol.asyncDispose]())

  test('the search walks the full-text index newest first and reads each match by its rowid: nothing sorted, no table scanned', async () => {
    const me = (await users.byIds(t.deps.store, [alice.id]))[0]!
    // Explained on a connection of its own: an EXPLAIN of an FTS5 query leaves the table's reader
    // open on its connection, which would then refuse the checkpoint after a deletion.
    using explainer = new Database(join(t.dir, 'test.db'), { readonly: true, strict: true })
    for (const input of [{ q: 'relea notes' }, { q: 'notes', conversation_id: roomId }]) {
      const reads = await plansOf(explainer, () => search(t.deps, me, input), (sql) => /messages_fts/.test(sql))
      expect(reads.length).toBe(2)
      for (const { sql, plan } of reads) {
        const context = `${sql}\n${plan.join('\n')}`
        expect(plan.filter((step) => /TEMP B-TREE|^SCAN (m|messages|cm|conversation_members)\b/.test(step)), context).toEqual([])
        expect(plan.some((step) => /^SCAN messages_fts VIRTUAL TABLE INDEX/.test(step)), context).toBe(true)
        expect(plan.some((step) => /^SEARCH m USING INTEGER PRIMARY KEY \(rowid=\?\)/.test(step)), context).toBe(true)
        expect(plan.some((step) => /^SEARCH cm (EXISTS )?USING (COVERING )?INDEX sqlite_autoindex_conversation_members_1 \(conversation_id=\? AND user_id=\?\)/.test(step)), context).toBe(true)
      }
    }
  })

  test('after VACUUM (which keeps rowids), the index still finds the right messages', async () => {
    const doomed = (await send(t.app, alice, roomId, 'a message to delete before the vacuum')).body
    expect((await call(t.app, 'DELETE', `/messages/${doomed.id}`, { token: alice.token })).status).toBe(204)
    sqliteOf(t).sqlite.run('VACUUM')
    const reply = await call(t.app, 'GET', '/search?q=notes', { token: alice.token })
    expect(reply.body.results.map((r: { message: { content: string } }) => r.message.content).sort()).toEqual([0, 1, 2, 3, 4].map((i) => `release notes ${i}`))
    expect(() => sqliteOf(t).sqlite.run("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")).not.toThrow()
  })

  test("a deleted message's words are gone from the index in the database file and its write-ahead log", async () => {
    const word = `qqzx${crypto.randomUUID().replaceAll('-', '')}`
    const sent = (await send(t.app, alice, roomId, `the secret word is ${word}`)).body
    await send(t.app, alice, roomId, 'an unrelated message after it')
    expect((await call(t.app, 'GET', `/search?q=${word}`, { token: alice.token })).body.results).toHaveLength(1)
    const files = ['test.db', 'test.db-wal'].map((name) => join(t.dir, name)).filter((path) => existsSync(path))
    const contains = () => files.some((path) => readFileSync(path).includes(word.slice(2)))
    expect(contains()).toBe(true)
    expect((await call(t.app, 'DELETE', `/messages/${sent.id}`, { token: alice.token })).status).toBe(204)
    expect(contains()).toBe(false)
    expect((await call(t.app, 'GET', `/search?q=${word}`, { token: alice.token })).body.results).toHaveLength(0)
  })
})
