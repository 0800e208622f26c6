import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { onPostgres, sqliteOf, testApp, type TestApp } from '../support/app'
import { FormClient } from '../support/form-client'
import { account, call, conversation, uniqueName, type Account } from '../support/http'
import { explain, plansOf, recordStatements, type Plan } from '../support/query-plans'

/**
 * A page of someone's conversations must cost the same in 10 conversations as in 10,000 (the
 * "Hardening II" issue), which holds only while SQLite reads the page as a range of that user's
 * rows in the (user_id, last_activity_at, conversation_id) index, in the index's order, and stops
 * after `limit`: a SCAN, or a TEMP B-TREE to sort the user's conversations by activity, would read
 * all of them for every page. Each row's unread count is a range of one conversation's messages
 * after the member's read position. The statements are captured as the app runs them.
 */

recordStatements()

const PAGE_SEARCH = 'SEARCH conversation_members USING INDEX conversation_members_user_activity_idx (user_id=? AND (last_activity_at,conversation_id)<(?,?))'
const CONVERSATION_BY_ID = 'SEARCH conversations USING INDEX sqlite_autoindex_conversations_1 (id=?)'
// Each conversation's unread count: its messages after the read position, a range of the (conversation_id, seq) index.
const UNREAD_COUNT = ['CORRELATED SCALAR SUBQUERY 1', 'SEARCH m USING INDEX messages_conversation_seq_idx (conversation_id=? AND seq>?)']
const ONE_CONVERSATIONS_MEMBERS = /^SEARCH conversation_members USING (COVERING )?INDEX sqlite_autoindex_conversation_members_1 \(conversation_id=\?\)$/

const memberReadsOf = (t: TestApp, run: () => Promise<unknown> | unknown) => plansOf(sqliteOf(t).sqlite, run, (sql) => /\bconversation_members\b/.test(sql))

/**
 * The page is one range search of the activity index joined to conversations by id, sorting
 * nothing; every other read of memberships is one conversation's members (put in the order they
 * joined, which is bounded by that conversation), at most one per conversation on the page and
 * the one after it; nothing scans a table.
 */
function expectOnePageSearch(reads: Plan[], pageSize: number) {
  const context = reads.map(({ sql, plan }) => `${sql}\n  ${plan.join('\n  ')}`).join('\n')
  const pages = reads.filter(({ plan }) => plan.some((step) => step.startsWith('SEARCH conversation_members USING INDEX conversation_members_user_activity_idx')))
  expect(pages.map((p) => p.plan), context).toEqual([[PAGE_SEARCH, CONVERSATION_BY_ID, ...UNREAD_COUNT]])
  const others = reads.filter((read) => !pages.includes(read))
  for (const { plan } of others) expect(plan.filter((step) => /\bconversation_members\b/.test(step)), context).toEqual([expect.stringMatching(ONE_CONVERSATIONS_MEMBERS)])
  expect(others.length, context).toBeLessThanOrEqual(pageSize + 1)
  expect(reads.flatMap((r) => r.plan).filter((step) => /^SCAN /.test(step)), context).toEqual([])
}

describe.skipIf(onPostgres)('the conversation list query plan (SQLite)', () => {
  let t: TestApp
  let alice: Account
  let browser: FormClient

  beforeAll(async () => {
    t = await testApp()
    const username = uniqueName('alice')
    browser = new FormClient(t.app)
    expect((await browser.signUp(username)).status).toBe(303)
    const login = await call(t.app, 'POST', '/auth/login', { body: { username, password: 'correct horse battery' } })
    alice = { id: (await call(t.app, 'GET', '/auth/me', { token: login.body.access_token })).body.id, username, token: login.body.access_token, refresh: login.body.refresh_token }
    const others = [await account(t.app), await account(t.app), await account(t.app)]
    for (let i = 0; i < 8; i++) await conversation(t.app, alice, others.slice(0, 2 + (i % 2)), `group ${i}`)
    await conversation(t.app, alice, [others[0]!])
  })
  afterAll(() => t[Symbol.asyncDispose]())

  test('the first page over the API is a range search of the activity index that sorts nothing', async () => {
    const reads = await memberReadsOf(t, async () => expect((await call(t.app, 'GET', '/conversations?limit=4', { token: alice.token })).status).toBe(200))
    expectOnePageSearch(reads, 4)
  })

  test('a page after a cursor is the same range search, starting at the cursor', async () => {
    const first = await call(t.app, 'GET', '/conversations?limit=4', { token: alice.token })
    const reads = await memberReadsOf(t, async () => {
      const next = await call(t.app, 'GET', `/conversations?limit=4&cursor=${first.body.next_cursor}`, { token: alice.token })
      expect(next.body.conversations.length).toBe(4)
    })
    expectOnePageSearch(reads, 4)
  })

  test("the web UI's sidebar reads its page the same way", async () => {
    const reads = await memberReadsOf(t, async () => expect((await browser.get('/ui/sidebar', { 'hx-request': 'true' })).status).toBe(200))
    expectOnePageSearch(reads, 50)
  })

  test("a sort of all the user's conversations would be caught: the old query read them all, then sorted", () => {
    const sql =
      'SELECT c.* FROM conversation_members m JOIN conversations c ON c.id = m.conversation_id WHERE m.user_id = ? ' +
      'ORDER BY coalesce(c.last_message_at, c.created_at) DESC, c.id DESC LIMIT 4'
    const plan = explain(sqliteOf(t).sqlite, sql, [alice.id])
    expect(plan.some((step) => step.includes('TEMP B-TREE'))).toBe(true)
    expect(() => expectOnePageSearch([{ sql, plan }], 4)).toThrow()
  })

  test('so would a page that reads members for more conversations than it holds', () => {
    const page: Plan = { sql: 'page', plan: [PAGE_SEARCH, CONVERSATION_BY_ID, ...UNREAD_COUNT] }
    const member: Plan = { sql: 'members', plan: ['SEARCH conversation_members USING INDEX sqlite_autoindex_conversation_members_1 (conversation_id=?)'] }
    expect(() => expectOnePageSearch([page, member, member], 2)).not.toThrow()
    expect(() => expectOnePageSearch([page, ...Array(4).fill(member)], 2)).toThrow()
  })
})
