import { describe, expect, test } from 'bun:test'
import { onPostgres, testApp, type TestApp } from '../support/app'
import { account, call, conversation, send, type Account } from '../support/http'

/** GET /search (issue 18), on the test engine: what is found, for whom, in which order, and what is refused. */

type Result = { message: { id: string; content: string; conversation_id: string; [field: string]: unknown }; snippet: string }
type Page = { results: Result[]; next_cursor: string | null }

function search(t: TestApp, who: Account, params: Record<string, string | number>) {
  const query = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]))
  return call<Page>(t.app, 'GET', `/search?${query}`, { token: who.token })
}

/** The contents found for `q`, in the order answered. */
async function found(t: TestApp, who: Account, q: string, params: Record<string, string | number> = {}): Promise<string[]> {
  const reply = await search(t, who, { q, ...params })
  expect(reply.status, JSON.stringify(reply.body)).toBe(200)
  return reply.body.results.map((r) => r.message.content)
}

async function sent(t: TestApp, who: Account, conversationId: string, content: string): Promise<{ id: string; content: string }> {
  const reply = await send(t.app, who, conversationId, content)
  expect(reply.status).toBe(201)
  return reply.body
}

async function team(t: TestApp) {
  const alice = await account(t.app)
  const bob = await account(t.app)
  const carol = await account(t.app)
  const group = await conversation(t.app, alice, [bob], 'Launch')
  return { alice, bob, carol, group }
}

describe('GET /search finds words', () => {
  test('a word finds the words it starts ("deplo" finds "deployment"); every word must be there; case does not matter; the message is the one history shows', async () => {
    await using t = await testApp()
    const { alice, bob, group } = await team(t)
    await sent(t, alice, group.id, 'We start the Deployment on Friday')
    await sent(t, bob, group.id, 'deploying is fun')
    await sent(t, bob, group.id, 'nothing to see')
    await sent(t, alice, group.id, 'a depot is not it')
    expect((await found(t, bob, 'deplo')).sort()).toEqual(['We start the Deployment on Friday', 'deploying is fun'])
    expect(await found(t, bob, 'DEPLO fri')).toEqual(['We start the Deployment on Friday'])
    expect(await found(t, bob, 'deplo saturday')).toEqual([])
    // Exactly what the rest of the API answers for the message.
    const [result] = (await search(t, bob, { q: 'friday' })).body.results
    const history = await call(t.app, 'GET', `/conversations/${group.id}/messages`, { token: bob.token })
    expect(result!.message).toEqual(history.body.messages[0])
    expect(result!.snippet).toBe('We start the Deployment on <mark>Friday</mark>')
  })

  test('a one-letter word finds only itself; longer ones also find what they start', async () => {
    await using t = await testApp()
    const { alice, group } = await team(t)
    await sent(t, alice, group.id, 'plan b it is')
    await sent(t, alice, group.id, 'bonus round')
    expect(await found(t, alice, 'b')).toEqual(['plan b it is'])
    expect(await found(t, alice, 'bo')).toEqual(['bonus round'])
  })

  test('diacritics are folded both ways: "cafe" finds "Café", "café" finds "cafe", "naive" finds "naïve"', async () => {
    await using t = await testApp()
    const { alice, group } = await team(t)
    await sent(t, alice, group.id, 'Meet at the Café')
    await sent(t, alice, group.id, 'the cafe downstairs')
    // The same word with its accent as a combining mark (NFD), as some keyboards send it.
    await sent(t, alice, group.id, 'un cafe\u0301 noir')
    await sent(t, alice, group.id, 'a naïve plan')
    const cafes = ['Meet at the Café', 'the cafe downstairs', 'un cafe\u0301 noir'].sort()
    expect((await found(t, alice, 'cafe')).sort()).toEqual(cafes)
    expect((await found(t, alice, 'café')).sort()).toEqual(cafes)
    expect((await found(t, alice, 'CAFÉ')).sort()).toEqual(cafes)
    expect(await found(t, alice, 'naive')).toEqual(['a naïve plan'])
    expect(await found(t, alice, 'naïv')).toEqual(['a naïve plan'])
  })

  test('quotes, operators and other query syntax are no syntax: a wrapped word finds what the word finds', async () => {
    await using t = await testApp()
    const { alice, group } = await team(t)
    await sent(t, alice, group.id, 'the deployment of NEAR and col:x')
    await sent(t, alice, group.id, 'AND OR NOT are words too')
    for (const q of ['"deplo', '"deplo"', 'deplo*', '(deplo)', '-deplo', '^deplo', '+deplo', "'deplo'", 'deplo:', '{deplo}', 'deplo\\']) {
      expect(await found(t, alice, q), q).toEqual(['the deployment of NEAR and col:x'])
    }
    expect(await found(t, alice, 'AND OR NOT')).toEqual(['AND OR NOT are words too'])
    expect(await found(t, alice, 'near')).toEqual(['the deployment of NEAR and col:x'])
    expect(await found(t, alice, 'col:x')).toEqual(['the deployment of NEAR and col:x'])
  })
})

describe('GET /search sees what the caller may see now', () => {
  test('only conversations the caller is a member of: added to a group, its messages are found at once; removed, at once no longer', async () => {
    await using t = await testApp()
    const { alice, bob, carol, group } = await team(t)
    const direct = await conversation(t.app, alice, [bob])
    await sent(t, alice, group.id, 'quarterly roadmap in the group')
    await sent(t, bob, direct.id, 'quarterly roadmap between us')
    expect(await found(t, carol, 'roadmap')).toEqual([])
    expect((await call(t.app, 'POST', `/conversations/${group.id}/members`, { token: alice.token, body: { member_ids: [carol.id] } })).status).toBe(200)
    expect(await found(t, carol, 'roadmap')).toEqual(['quarterly roadmap in the group'])
    // Carol reads the group (so her membership is known to the server), then is removed.
    expect((await call(t.app, 'GET', `/conversations/${group.id}/messages`, { token: carol.token })).status).toBe(200)
    expect((await search(t, carol, { q: 'roadmap', conversation_id: group.id })).status).toBe(200)
    expect((await call(t.app, 'DELETE', `/conversations/${group.id}/members/${carol.id}`, { token: alice.token })).status).toBe(204)
    expect(await found(t, carol, 'roadmap')).toEqual([])
    expect((await search(t, carol, { q: 'roadmap', conversation_id: group.id })).status).toBe(403)
    expect((await found(t, bob, 'roadmap')).sort()).toEqual(['quarterly roadmap between us', 'quarterly roadmap in the group'])
  })

  test('an edit is found by its new text at once, no longer by its old one', async () => {
    await using t = await testApp()
    const { alice, bob, group } = await team(t)
    const message = await sent(t, alice, group.id, 'lunch at noon')
    expect(await found(t, bob, 'noon')).toEqual(['lunch at noon'])
    expect((await call(t.app, 'PATCH', `/messages/${message.id}`, { token: alice.token, body: { content: 'dinner at eight' } })).status).toBe(200)
    expect(await found(t, bob, 'noon')).toEqual([])
    expect(await found(t, bob, 'lunch')).toEqual([])
    const [result] = (await search(t, bob, { q: 'dinn' })).body.results
    expect(result!.message).toMatchObject({ id: message.id, content: 'dinner at eight', edited_at: expect.any(String) })
  })

  test('a deleted message is never found, by its words or anything else', async () => {
    await using t = await testApp()
    const { alice, bob, group } = await team(t)
    const secret = await sent(t, alice, group.id, 'the vault code is swordfish')
    await sent(t, alice, group.id, 'the vault is downstairs')
    expect((await found(t, bob, 'vault')).length).toBe(2)
    expect((await call(t.app, 'DELETE', `/messages/${secret.id}`, { token: alice.token })).status).toBe(204)
    expect(await found(t, bob, 'swordfish')).toEqual([])
    expect(await found(t, bob, 'vault')).toEqual(['the vault is downstairs'])
    expect(await found(t, alice, 'code')).toEqual([])
  })

  test('conversation_id: that conversation only; 403 for one the caller is not in, 404 for none', async () => {
    await using t = await testApp()
    const { alice, bob, carol, group } = await team(t)
    const direct = await conversation(t.app, alice, [bob])
    const other = await conversation(t.app, carol, [bob])
    await sent(t, alice, group.id, 'budget in the group')
    await sent(t, alice, direct.id, 'budget between us')
    await sent(t, carol, other.id, 'budget elsewhere')
    expect(await found(t, alice, 'budget', { conversation_id: direct.id })).toEqual(['budget between us'])
    expect(await found(t, alice, 'budget', { conversation_id: group.id })).toEqual(['budget in the group'])
    expect(await search(t, alice, { q: 'budget', conversation_id: other.id })).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } })
    expect(await search(t, alice, { q: 'budget', conversation_id: 'no-such-conversation' })).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } })
    expect(await search(t, alice, { q: 'budget', conversation_id: 'not an id\u00e9' })).toMatchObject({ status: 404 })
  })

  test('without a token 401, with a bad one 401', async () => {
    await using t = await testApp()
    expect((await call(t.app, 'GET', '/search?q=hello')).status).toBe(401)
    expect((await call(t.app, 'GET', '/search?q=hello', { token: 'not-a-token' })).status).toBe(401)
  })
})

describe('GET /search ranks and pages', () => {
  test('more matching words first, then the newest first', async () => {
    await using t = await testApp()
    const { alice, bob, group } = await team(t)
    await sent(t, alice, group.id, 'deploy, deploy, deploy: three times')
    await sent(t, bob, group.id, 'one deployment, older')
    await sent(t, alice, group.id, 'deploy twice: deploying')
    await sent(t, bob, group.id, 'one deployment, newer')
    await sent(t, alice, group.id, 'unrelated')
    expect(await found(t, alice, 'deplo')).toEqual(['deploy, deploy, deploy: three times', 'deploy twice: deploying', 'one deployment, newer', 'one deployment, older'])
  })

  test('cursors walk every match once, in the order of one long page, even while others write between pages', async () => {
    await using t = await testApp()
    const { alice, bob, carol, group } = await team(t)
    const elsewhere = await conversation(t.app, carol, [bob])
    for (let i = 0; i < 23; i++) await sent(t, i % 2 ? alice : bob, group.id, `${'sprint '.repeat(1 + (i % 4))}note ${i}`)
    const all = (await search(t, alice, { q: 'sprint', limit: 50 })).body
    expect(all.results.length).toBe(23)
    expect(all.next_cursor).toBeNull()
    const walked: string[] = []
    let cursor: string | null = null
    for (let pages = 0; pages < 10; pages++) {
      const reply: { status: number; body: Page } = await search(t, alice, { q: 'sprint', limit: 5, ...(cursor ? { cursor } : {}) })
      expect(reply.status).toBe(200)
      walked.push(...reply.body.results.map((r) => r.message.id))
      // Someone else writes matching messages where Alice cannot see them: her pages stay as they were.
      await sent(t, carol, elsewhere.id, `sprint sprint sprint ${pages}`)
      cursor = reply.body.next_cursor
      if (cursor === null) break
      expect(reply.body.results.length).toBe(5)
    }
    expect(walked).toEqual(all.results.map((r) => r.message.id))
  })

  test('limit: 20 by default, 1 to 50; a cursor must be an earlier page of the same search', async () => {
    await using t = await testApp()
    const { alice, group } = await team(t)
    for (let i = 0; i < 22; i++) await sent(t, alice, group.id, `standup ${i}`)
    const first = await search(t, alice, { q: 'standup' })
    expect(first.body.results.length).toBe(20)
    expect(first.body.next_cursor).toEqual(expect.any(String))
    for (const limit of ['0', '51', '-1', '1.5', 'ten']) expect(await search(t, alice, { q: 'standup', limit })).toMatchObject({ status: 422, body: { error: { details: [{ field: 'limit' }] } } })
    const cursor = first.body.next_cursor!
    expect((await search(t, alice, { q: 'standup', cursor })).body.results.length).toBe(2)
    for (const bad of [`${cursor}x`, cursor.slice(1), 'AAAA', '!!', 'a'.repeat(401), Buffer.from('[1,2,"x","y"]').toString('base64url')]) {
      expect(await search(t, alice, { q: 'standup', cursor: bad }), bad).toMatchObject({ status: 422, body: { error: { details: [{ field: 'cursor' }] } } })
    }
    // Another search's cursor: other words, or the same words in another place.
    expect(await search(t, alice, { q: 'standu', cursor })).toMatchObject({ status: 422, body: { error: { details: [{ field: 'cursor' }] } } })
    expect(await search(t, alice, { q: 'standup', cursor, conversation_id: group.id })).toMatchObject({ status: 422, body: { error: { details: [{ field: 'cursor' }] } } })
  })
})

describe('GET /search refuses what it cannot search, never with a 500', () => {
  test('empty, only punctuation or emoji: 422; too long or too many words: 422; NUL: 422; only short common words: 200', async () => {
    await using t = await testApp()
    const { alice, group } = await team(t)
    await sent(t, alice, group.id, 'the end of a day')
    const refused = async (q: string, message: RegExp) => {
      const reply = await search(t, alice, { q })
      expect(reply.status, q).toBe(422)
      expect(reply.body, q).toMatchObject({ error: { code: 'validation_failed', details: [{ field: 'q', message: expect.stringMatching(message) }] } })
    }
    await refused('', /must not be empty/)
    await refused('   ', /must not be empty/)
    await refused('"*()^-:,.!?', /must hold a word/)
    await refused('😀 🎉', /must hold a word/)
    await refused('x'.repeat(10_000), /at most 200 characters/)
    await refused('one two three four five six seven eight nine', /at most 8 words/)
    await refused('a\u0000b', /NUL/)
    expect((await call(t.app, 'GET', '/search', { token: alice.token })).status).toBe(422)
    expect(await found(t, alice, 'the of a')).toEqual(['the end of a day'])
    expect(await found(t, alice, 'x'.repeat(200))).toEqual([])
  })

  test('a search past SEARCH_TIMEOUT_MS is stopped with 503 search_timeout', async () => {
    await using t = await testApp({ SEARCH_TIMEOUT_MS: '1' })
    const { alice, bob, carol, group } = await team(t)
    const elsewhere = await conversation(t.app, carol, [bob])
    await sent(t, alice, group.id, 'the needle Alice may see')
    // Many matches, newer than hers. SQLite walks the matches newest first, so many that Alice may not see cost it
    // the most (it walks them all to find hers); PostgreSQL's planner reads only her conversations
    // when they hold few messages, so many that she may see cost it the most (all are ranked).
    await t.sql(
      `INSERT INTO messages (id, conversation_id, seq, sender_id, message_id, content, created_at)
       WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000)
       SELECT 'bulk-' || i, ?, 1000 + i, ?, 'bulk-' || i, 'needle number ' || i, 2000000000000 + i FROM n`,
      onPostgres ? group.id : elsewhere.id,
      onPostgres ? alice.id : carol.id,
    )
    const reply = await search(t, alice, { q: 'needle' })
    expect(reply).toMatchObject({ status: 503, body: { error: { code: 'search_timeout', message: expect.stringMatching(/longer than 1 ms/) } } })
  })
})
