import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import * as messages from '../../src/messages/service'
import * as users from '../../src/users/service'
import { onPostgres, sqliteOf, testApp, type TestApp } from '../support/app'
import { account, call, conversation, send, type Account } from '../support/http'
import { plansOf, recordStatements } from '../support/query-plans'

/**
 * The history page must stay as fast with a million messages as with a thousand (issue 6), which
 * holds only while SQLite finds the page through the (conversation_id, seq) index: a full SCAN of
 * messages, or a TEMP B-TREE to sort them, costs time in proportion to the table.
 *
 * The SQL is captured as the app runs it, from a real GET /conversations/{id}/messages (the page as
 * JSON, built in SQLite) and from await messages.history() (the page as objects, for the web UI), so the
 * test follows the service however it builds its queries (query builder, prepared statement, raw SQL).
 */

recordStatements()

/** The reads of messages that `run` made, each with its EXPLAIN QUERY PLAN details. */
const messageReadsOf = (t: TestApp, run: () => Promise<unknown> | unknown) => plansOf(sqliteOf(t).sqlite, run, (sql) => /\bfrom\s+["`]?messages["`]?/i.test(sql))

const INDEX_SEARCH = /^SEARCH messages USING (COVERING )?INDEX messages_conversation_seq_idx \(conversation_id=\?/

/** Every step that reads messages (a statement may have several: the page and its has_more probe) searches the index; none sorts. */
function expectIndexSearchesOnly(reads: Array<{ sql: string; plan: string[] }>) {
  expect(reads.length).toBeGreaterThan(0)
  for (const { sql, plan } of reads) {
    const context = `${sql}\n${plan.join('\n')}`
    const steps = plan.filter((step) => /\bmessages\b/.test(step))
    expect(steps.length, context).toBeGreaterThan(0)
    expect(steps.filter((step) => !INDEX_SEARCH.test(step)), context).toEqual([])
    expect(plan.filter((step) => /TEMP B-TREE|^SCAN messages\b/.test(step)), context).toEqual([])
  }
}

describe.skipIf(onPostgres)('the history query plan (SQLite)', () => {
  let t: TestApp
  let alice: Account
  let roomId: string

  beforeAll(async () => {
    t = await testApp()
    alice = await account(t.app)
    const bob = await account(t.app)
    roomId = (await conversation(t.app, alice, [bob])).id
    for (let i = 0; i < 5; i++) expect((await send(t.app, i % 2 ? bob : alice, roomId, `message ${i}`)).status).toBe(201)
  })
  afterAll(() => t[Symbol.asyncDispose]())

  for (const [shape, query, parsed] of [
    ['the newest page', '?limit=50', { limit: 50 }],
    ['a page before a seq', '?limit=50&before=4', { limit: 50, before: 4 }],
    ['a page after a seq', '?limit=50&after=2', { limit: 50, after: 2 }],
    ['a page between two seqs', '?before=5&after=1', { before: 5, after: 1 }],
  ] as const) {
    test(`${shape}, as JSON for the API, searches the (conversation_id, seq) index and sorts nothing`, async () => {
      const reads = await messageReadsOf(t, async () => {
        expect((await call(t.app, 'GET', `/conversations/${roomId}/messages${query}`, { token: alice.token })).status).toBe(200)
      })
      expect(reads.some(({ sql }) => sql.includes('json_group_array'))).toBe(true)
      expectIndexSearchesOnly(reads)
    })

    test(`${shape}, as objects for the web UI, searches the (conversation_id, seq) index and sorts nothing`, async () => {
      const reads = await messageReadsOf(t, async () => await messages.history(t.deps.store, (await users.byId(t.deps.store, alice.id))!, roomId, parsed))
      expectIndexSearchesOnly(reads)
    })
  }

  test('a page of an export, as NDJSON, searches the (conversation_id, seq) index and sorts nothing', async () => {
    const reads = await messageReadsOf(t, async () => {
      const reply = await t.app.handle(new Request(`http://localhost/conversations/${roomId}/export`, { headers: { authorization: `Bearer ${alice.token}` } }))
      expect((await reply.text()).split('\n')).toHaveLength(6)
    })
    expect(reads.some(({ sql }) => sql.includes('group_concat'))).toBe(true)
    expectIndexSearchesOnly(reads)
  })

  test("storing a message looks for its sender's earlier use of the message_id through the index keyed message_id first", async () => {
    const reads = await messageReadsOf(t, async () => expect((await send(t.app, alice, roomId, 'keyed')).status).toBe(201))
    const lookups = reads.filter(({ sql }) => /message_id/.test(sql) && !sql.includes('json_group_array'))
    expect(lookups.length).toBe(1)
    // Key first, so time-ordered keys (UUIDv7) are inserted on the index's last pages (bench/chat.ts).
    expect(lookups[0]!.plan).toEqual(['SEARCH messages USING INDEX messages_message_id_sender_idx (message_id=? AND sender_id=?)'])
  })

  test('a full scan would be caught: the same check fails on a query the index cannot serve', () => {
    const plan = (sqliteOf(t).sqlite.query('EXPLAIN QUERY PLAN SELECT * FROM messages WHERE content = ? ORDER BY created_at').all('x') as { detail: string }[]).map((r) => r.detail)
    expect(() => expectIndexSearchesOnly([{ sql: 'a full scan', plan }])).toThrow()
    expect(plan.some((step) => INDEX_SEARCH.test(step))).toBe(false)
    expect(plan.filter((step) => /TEMP B-TREE|^SCAN messages\b/.test(step)).length).toBeGreaterThan(0)
  })

  test('so would one part of a statement that does not use the index, beside a part that does', () => {
    const sql = 'SELECT (SELECT count(*) FROM messages WHERE conversation_id = ?1 AND seq > 0), (SELECT max(created_at) FROM messages WHERE content = ?2)'
    const plan = (sqliteOf(t).sqlite.query(`EXPLAIN QUERY PLAN ${sql}`).all(roomId, 'x') as { detail: string }[]).map((r) => r.detail)
    expect(plan.some((step) => INDEX_SEARCH.test(step))).toBe(true)
    expect(() => expectIndexSearchesOnly([{ sql, plan }])).toThrow()
  })
})
