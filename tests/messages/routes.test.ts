import { describe, expect, test } from 'bun:test'
import { MAX_BODY_BYTES } from '../../src/app'
import * as messages from '../../src/messages/service'
import * as users from '../../src/users/service'
import { CONTENT_HEX, testApp, type TestApp } from '../support/app'
import { account, call, conversation, send, uniqueName, type Account } from '../support/http'

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

const post = (t: TestApp, who: Account | undefined, body: unknown) => call(t.app, 'POST', '/messages', { token: who?.token, body })
const history = (t: TestApp, who: Account | undefined, conversationId: string, query = '') =>
  call(t.app, 'GET', `/conversations/${conversationId}/messages${query}`, { token: who?.token })
const messageCount = async (t: TestApp) => (await t.sql<{ n: number }>('SELECT count(*) AS n FROM messages'))[0]!.n
const seqs = (reply: { body: { messages: Array<{ seq: number }> } }) => reply.body.messages.map((m) => m.seq)
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

/** Alice and Bob share a 1-on-1; Carol is in it neither. */
async function setup(t: TestApp) {
  const alice = await account(t.app, uniqueName('alice'))
  const bob = await account(t.app, uniqueName('bob'))
  const carol = await account(t.app, uniqueName('carol'))
  const direct = await conversation(t.app, alice, [bob])
  return { alice, bob, carol, direct }
}

/** `count` messages from `sender`, straight through the service (fast), contents "message 1", "message 2", … */
async function seed(t: TestApp, sender: Account, conversationId: string, count: number): Promise<void> {
  const actor = (await users.byId(t.deps.store, sender.id))!
  for (let i = 1; i <= count; i++) await messages.post(t.deps, actor, { message_id: `seed-${i}`, conversation_id: conversationId, content: `message ${i}` })
}

describe('POST /messages', () => {
  test('stores the message and answers 201 with it', async () => {
    await using t = await testApp()
    const { alice, direct } = await setup(t)
    const reply = await post(t, alice, { message_id: 'client-key-1', conversation_id: direct.id, content: 'Hello, Bob' })
    expect(reply.status).toBe(201)
    expect(reply.body).toEqual({
      id: expect.any(String),
      message_id: 'client-key-1',
      sender_id: alice.id,
      conversation_id: direct.id,
      content: 'Hello, Bob',
      created_at: expect.stringMatching(ISO),
      seq: 1,
      edited_at: null,
      deleted_at: null,
      reply_to: null,
      reactions: [],
    })
    expect(reply.body.id).not.toBe('client-key-1')
    expect(Math.abs(Date.parse(reply.body.created_at) - Date.now())).toBeLessThan(60_000)
  })

  test('seq counts 1, 2, 3 per conversation, whoever sends, independently across conversations', async () => {
    await using t = await testApp()
    const { alice, bob, carol, direct } = await setup(t)
    const group = await conversation(t.app, alice, [bob, carol], 'Team')
    const order: Array<[Account, string]> = [
      [alice, direct.id],
      [bob, direct.id],
      [carol, group.id],
      [alice, direct.id],
      [alice, group.id],
      [bob, group.id],
    ]
    const replies = []
    for (const [who, id] of order) replies.push(await send(t.app, who, id, 'hi'))
    expect(replies.map((r) => [r.status, r.body.conversation_id, r.body.seq])).toEqual([
      [201, direct.id, 1],
      [201, direct.id, 2],
      [201, group.id, 1],
      [201, direct.id, 3],
      [201, group.id, 2],
      [201, group.id, 3],
    ])
  })

  test('twenty different messages posted at once take seqs 1 to 20, each exactly once', async () => {
    await using t = await testApp()
    const { alice, bob, direct } = await setup(t)
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => send(t.app, i % 2 ? alice : bob, direct.id, `message ${i}`)))
    expect(replies.map((r) => r.status)).toEqual(Array(20).fill(201))
    expect(replies.map((r) => r.body.seq).sort((a, b) => a - b)).toEqual(range(1, 20))
    expect(await messageCount(t)).toBe(20)
  })

  test('sender_id may be left out or be the caller; anyone else is 403 and stores nothing', async () => {
    await using t = await testApp()
    const { alice, bob, direct } = await setup(t)
    const without = await post(t, alice, { message_id: 'a', conversation_id: direct.id, content: 'one' })
    const self = await post(t, alice, { message_id: 'b', conversation_id: direct.id, content: 'two', sender_id: alice.id })
    const impersonating = await post(t, alice, { message_id: 'c', conversation_id: direct.id, content: 'three', sender_id: bob.id })
    expect([without.status, self.status]).toEqual([201, 201])
    expect([without.body.sender_id, self.body.sender_id]).toEqual([alice.id, alice.id])
    expect(impersonating.status).toBe(403)
    expect(impersonating.body).toEqual({ error: { code: 'forbidden', message: expect.any(String) } })
    expect(await messageCount(t)).toBe(2)
  })

  test('a message announces the conversation: last_seq and last_message_at move', async () => {
    await using t = await testApp()
    const { alice, bob, direct } = await setup(t)
    await send(t.app, alice, direct.id, 'one')
    const second = await send(t.app, bob, direct.id, 'two')
    const list = await call(t.app, 'GET', '/conversations', { token: alice.token })
    expect(list.body.conversations).toEqual([{ ...direct, display_name: bob.username, last_seq: 2, last_event_seq: 2, last_message_at: second.body.created_at, last_read_seq: 0, unread_count: 1 }])
  })
})

describe('POST /messages: idempotency', () => {
  test('the same message_id again from the same sender answers like the first time, 201 with the stored message, marked as a replay, and stores nothing new', async () => {
    await using t = await testApp()
    const { alice, direct } = await setup(t)
    const body = { message_id: 'retry-me', conversation_id: direct.id, content: 'once' }
    const first = await post(t, alice, body)
    const retry = await post(t, alice, body)
    const retryWithSender = await post(t, alice, { ...body, sender_id: alice.id })
    expect(first.status).toBe(201)
    expect(first.headers.get('idempotent-replayed')).toBeNull()
    expect(retry).toEqual({ status: 201, body: first.body, headers: retry.headers })
    expect(retryWithSender).toEqual({ status: 201, body: first.body, headers: retryWithSender.headers })
    expect(retry.headers.get('idempotent-replayed')).toBe('true')
    expect(retryWithSender.headers.get('idempotent-replayed')).toBe('true')
    expect(await messageCount(t)).toBe(1)
    // The retry took no seq: the next message is 2.
    expect((await send(t.app, alice, direct.id, 'next')).body.seq).toBe(2)
  })

  test('ten identical posts at once store one message: ten 201s with the same message, nine of them marked as replays', async () => {
    await using t = await testApp()
    const { alice, direct } = await setup(t)
    const body = { message_id: 'burst', conversation_id: direct.id, content: 'only once' }
    const replies = await Promise.all(Array.from({ length: 10 }, () => post(t, alice, body)))
    expect(await messageCount(t)).toBe(1)
    expect(replies.map((r) => r.status)).toEqual(Array(10).fill(201))
    const created = replies.find((r) => r.headers.get('idempotent-replayed') === null)!
    expect(replies.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(9)
    for (const reply of replies) expect(reply.body).toEqual(created.body)
    expect(created.body).toMatchObject({ seq: 1, message_id: 'burst' })
  })

  test('the same message_id from a different sender is a separate message', async () => {
    await using t = await testApp()
    const { alice, bob, direct } = await setup(t)
    const fromAlice = await post(t, alice, { message_id: 'shared-key', conversation_id: direct.id, content: 'same' })
    const fromBob = await post(t, bob, { message_id: 'shared-key', conversation_id: direct.id, content: 'same' })
    expect([fromAlice.status, fromBob.status]).toEqual([201, 201])
    expect(fromBob.body).toEqual({ ...fromAlice.body, id: expect.any(String), sender_id: bob.id, seq: 2, created_at: expect.stringMatching(ISO) })
    expect(fromBob.body.id).not.toBe(fromAlice.body.id)
    expect(await messageCount(t)).toBe(2)
  })

  test('the same message_id with other content is 409 and changes nothing', async () => {
    await using t = await testApp()
    const { alice, direct } = await setup(t)
    const first = await post(t, alice, { message_id: 'k', conversation_id: direct.id, content: 'original' })
    const reused = await post(t, alice, { message_id: 'k', conversation_id: direct.id, content: 'edited' })
    expect(reused.status).toBe(409)
    expect(reused.body).toEqual({ error: { code: 'conflict', message: expect.any(String) } })
    expect((await history(t, alice, direct.id)).body.messages).toEqual([first.body])
  })

  test('the same message_id to another conversation is 409', async () => {
    await using t = await testApp()
    const { alice, bob, carol, direct } = await setup(t)
    const group = await conversation(t.app, alice, [bob, carol], 'Team')
    await post(t, alice, { message_id: 'k', conversation_id: direct.id, content: 'same words' })
    const elsewhere = await post(t, alice, { message_id: 'k', conversation_id: group.id, content: 'same words' })
    expect(elsewhere.status).toBe(409)
    expect(elsewhere.body.error.code).toBe('conflict')
    expect((await history(t, alice, group.id)).body).toEqual({ messages: [], has_more: false })
  })
})

describe('POST /messages: content', () => {
  test.each([
    ['empty', ''],
    ['only spaces', '   '],
    ['only mixed whitespace', ' \n\t\r\n '],
    ['4001 ASCII characters', 'a'.repeat(4001)],
    ['4001 emoji', '😀'.repeat(4001)],
  ])('%s is 422 on content and stores nothing', async (_, content) => {
    await using t = await testApp()
    const { alice, direct } = await setup(t)
    const reply = await send(t.app, alice, direct.id, content)
    expect(reply.status).toBe(422)
    expect(reply.body).toEqual({ error: { code: 'validation_failed', message: expect.any(String), details: [{ field: 'content', message: expect.any(String) }] } })
    expect(await messageCount(t)).toBe(0)
  })

  test('missing content is 422', async () => {
    await using t = await testApp()
    const { alice, direct } = await setup(t)
    const reply = await post(t, alice, { message_id: 'k', conversation_id: direct.id })
    expect(reply.status).toBe(422)
    expect(reply.body.error.details.map((d: { field: string }) => d.field)).toContain('content')
  })

  test.each([
    ['4000 ASCII characters', 'a'.repeat(4000)],
    ['4000 emoji (8000 UTF-16 units)', '😀'.repeat(4000)],
    ['4000 code points of letters with combining marks', 'e\u0301'.repeat(2000)],
  ])('%s are accepted and stored whole', async (_, content) => {
    await using t = await testApp()
    const { alice, direct } = await setup(t)
    const reply = await send(t.app, alice, direct.id, content)
    expect(reply.status).toBe(201)
    expect(reply.body.content).toBe(content)
    expect((await history(t, alice, direct.id)).body.messages[0].content).toBe(content)
  })

  test('content round-trips byte for byte: RTL override, combining marks, control characters, 4-byte emoji, newlines', async () => {
    await using t = await testApp()
    const { alice, bob, direct } = await setup(t)
    const contents = [
      'abc\u202Edef\u202C ghi',
      'Zalgo: Z\u0351\u036B\u0343\u036A\u0302\u036B\u033D\u034F\u0334\u0319\u0324\u031E\u0349\u035A\u032F\u031E\u0320\u034D',
      'before\u0007after',
      '\u0001',
      '😀👩‍👩‍👧‍👦🏳️‍🌈 𝕳𝖊𝖑𝖑𝖔 \u{1F600}',
      'line one\nline two\r\nline three\n\n',
      '  leading and trailing spaces kept  ',
      '<script>alert("x")</script> & \' " \\ /',
      '\uFEFFbom \u200Bzero width \u00A0nbsp',
    ]
    const sent = []
    for (const content of contents) sent.push(await send(t.app, alice, direct.id, content))
    expect(sent.map((r) => r.status)).toEqual(contents.map(() => 201))
    expect(sent.map((r) => r.body.content)).toEqual(contents)

    const page = await history(t, bob, direct.id)
    expect(page.body.messages.map((m: { content: string }) => m.content)).toEqual(contents)
    // And as stored: the exact UTF-8 bytes.
    const stored = await t.sql<{ h: string }>(`SELECT ${CONTENT_HEX} AS h FROM messages ORDER BY seq`)
    expect(stored.map((r) => r.h)).toEqual(contents.map((c) => Buffer.from(c, 'utf8').toString('hex').toUpperCase()))
  })
  test('content with a lone surrogate is refused or kept exactly, never stored altered: an identical retry is not a 409', async () => {
    await using t = await testApp()
    const { alice, direct } = await setup(t)
    const content = 'x\uD800y' // valid JSON ("x\\ud800y"), not valid Unicode
    const body = { message_id: 'lone-surrogate', conversation_id: direct.id, content }
    const first = await post(t, alice, body)
    const retry = await post(t, alice, body)
    // JSON.stringify escapes a lone surrogate, so a failure shows "x\\ud800y" against what came back.
    const outcome = { status: first.status, content: JSON.stringify(first.status === 201 ? first.body.content : content), retry: retry.status }
    // Either answer is sound: 422 both times, or 201 with the content as sent, twice.
    const sent = JSON.stringify(content)
    expect(outcome).toEqual(first.status === 201 ? { status: 201, content: sent, retry: 201 } : { status: 422, content: sent, retry: 422 })
  })
})

describe('POST /messages: message_id', () => {
  test.each([
    ['missing', undefined],
    ['empty', ''],
    ['129 characters', 'k'.repeat(129)],
    ['containing a space', 'has space'],
    ['containing a tab', 'has\ttab'],
    ['non-ASCII', 'clé'],
    ['a number', 12345],
  ])('%s is 422 on message_id', async (_, messageId) => {
    await using t = await testApp()
    const { alice, direct } = await setup(t)
    const reply = await post(t, alice, { conversation_id: direct.id, content: 'hi', ...(messageId === undefined ? {} : { message_id: messageId }) })
    expect(reply.status).toBe(422)
    expect(reply.body.error.code).toBe('validation_failed')
    expect(reply.body.error.details.map((d: { field: string }) => d.field)).toContain('message_id')
    expect(await messageCount(t)).toBe(0)
  })

  test('128 visible ASCII characters are accepted', async () => {
    await using t = await testApp()
    const { alice, direct } = await setup(t)
    const messageId = '!~'.repeat(64)
    const reply = await post(t, alice, { message_id: messageId, conversation_id: direct.id, content: 'hi' })
    expect(reply).toMatchObject({ status: 201, body: { message_id: messageId } })
  })
})

describe('POST /messages: access', () => {
  test('a non-member is 403 and the conversation does not move', async () => {
    await using t = await testApp()
    const { carol, direct } = await setup(t)
    const reply = await send(t.app, carol, direct.id, 'let me in')
    expect(reply.status).toBe(403)
    expect(reply.body).toEqual({ error: { code: 'forbidden', message: expect.any(String) } })
    expect(await messageCount(t)).toBe(0)
    expect((await t.sql('SELECT last_seq, last_message_at FROM conversations'))[0]).toEqual({ last_seq: 0, last_message_at: null })
  })

  test('an unknown conversation is 404', async () => {
    await using t = await testApp()
    const { alice } = await setup(t)
    const reply = await send(t.app, alice, 'no-such-conversation', 'hello?')
    expect(reply.status).toBe(404)
    expect(reply.body).toEqual({ error: { code: 'not_found', message: expect.any(String) } })
  })

  test('without a token is 401', async () => {
    await using t = await testApp()
    const { direct } = await setup(t)
    const reply = await post(t, undefined, { message_id: 'k', conversation_id: direct.id, content: 'hi' })
    expect(reply.status).toBe(401)
    expect(reply.body.error.code).toBe('missing_token')
    expect(await messageCount(t)).toBe(0)
  })

  test('a body over 64 KiB is 413 in the error shape', async () => {
    await using t = await testApp()
    const { alice, direct } = await setup(t)
    const reply = await send(t.app, alice, direct.id, 'x'.repeat(MAX_BODY_BYTES + 1))
    expect(reply.status).toBe(413)
    expect(reply.body).toEqual({ error: { code: 'payload_too_large', message: expect.any(String) } })
    expect(await messageCount(t)).toBe(0)
  })

  test('malformed JSON is 400', async () => {
    await using t = await testApp()
    const { alice } = await setup(t)
    const reply = await call(t.app, 'POST', '/messages', { token: alice.token, raw: '{"content": "unterminated' })
    expect(reply.status).toBe(400)
    expect(reply.body).toEqual({ error: { code: 'invalid_json', message: expect.any(String) } })
  })
})

describe('GET /conversations/:id/messages', () => {
  test('by default: the newest 50, oldest first, with has_more', async () => {
    await using t = await testApp()
    const { alice, bob, direct } = await setup(t)
    await seed(t, alice, direct.id, 60)
    const reply = await history(t, bob, direct.id)
    expect(reply.status).toBe(200)
    expect(seqs(reply)).toEqual(range(11, 60))
    expect(reply.body.has_more).toBe(true)
    expect(reply.body.messages[0]).toEqual({
      id: expect.any(String),
      message_id: 'seed-11',
      sender_id: alice.id,
      conversation_id: direct.id,
      content: 'message 11',
      created_at: expect.stringMatching(ISO),
      seq: 11,
      edited_at: null,
      deleted_at: null,
      reply_to: null,
      reactions: [],
    })
  })

  test('an empty conversation is an empty page', async () => {
    await using t = await testApp()
    const { alice, direct } = await setup(t)
    expect(await history(t, alice, direct.id)).toMatchObject({ status: 200, body: { messages: [], has_more: false } })
  })

  test('limit picks the page size; has_more is false exactly when nothing is left', async () => {
    await using t = await testApp()
    const { alice, direct } = await setup(t)
    await seed(t, alice, direct.id, 60)
    const ten = await history(t, alice, direct.id, '?limit=10')
    expect([seqs(ten), ten.body.has_more]).toEqual([range(51, 60), true])
    const all = await history(t, alice, direct.id, '?limit=60')
    expect([seqs(all), all.body.has_more]).toEqual([range(1, 60), false])
    const allButOne = await history(t, alice, direct.id, '?limit=59')
    expect([seqs(allButOne), allButOne.body.has_more]).toEqual([range(2, 60), true])
    const max = await history(t, alice, direct.id, '?limit=200')
    expect([seqs(max), max.body.has_more]).toEqual([range(1, 60), false])
  })

  test.each([
    ['limit=0', '?limit=0'],
    ['limit=201', '?limit=201'],
    ['limit=abc', '?limit=abc'],
    ['limit=-5', '?limit=-5'],
    ['before=0', '?before=0'],
    ['before=abc', '?before=abc'],
    ['after=-1', '?after=-1'],
  ])('%s is 422', async (_, query) => {
    await using t = await testApp()
    const { alice, direct } = await setup(t)
    const reply = await history(t, alice, direct.id, query)
    expect(reply.status).toBe(422)
    expect(reply.body).toEqual({ error: { code: 'validation_failed', message: expect.any(String), details: expect.any(Array) } })
  })

  test.each([
    ['limit=0', '?limit=0', 'limit'],
    ['limit=201', '?limit=201', 'limit'],
    ['limit=abc', '?limit=abc', 'limit'],
    ['before=0', '?before=0', 'before'],
    ['after=-1', '?after=-1', 'after'],
  ])('the 422 for %s names the field in its details', async (_, query, field) => {
    await using t = await testApp()
    const { alice, direct } = await setup(t)
    const reply = await history(t, alice, direct.id, query)
    expect(reply.status).toBe(422)
    expect(reply.body.error.details.map((d: { field: string }) => d.field)).toEqual([field])
  })

  test('before=<seq> pages back; walking back through 60 with limit 25 yields every seq exactly once', async () => {
    await using t = await testApp()
    const { alice, bob, direct } = await setup(t)
    await seed(t, alice, direct.id, 60)
    const pages: Array<[number[], boolean]> = []
    let query = '?limit=25'
    for (let guard = 0; guard < 10; guard++) {
      const reply = await history(t, bob, direct.id, query)
      expect(reply.status).toBe(200)
      pages.push([seqs(reply), reply.body.has_more])
      if (!reply.body.has_more) break
      query = `?limit=25&before=${reply.body.messages[0].seq}`
    }
    expect(pages).toEqual([
      [range(36, 60), true],
      [range(11, 35), true],
      [range(1, 10), false],
    ])
    expect(pages.flatMap(([s]) => s).sort((a, b) => a - b)).toEqual(range(1, 60))
  })

  test('before=<seq> alone returns the newest 50 below it; before=1 is empty', async () => {
    await using t = await testApp()
    const { alice, direct } = await setup(t)
    await seed(t, alice, direct.id, 60)
    const below = await history(t, alice, direct.id, '?before=52')
    expect([seqs(below), below.body.has_more]).toEqual([range(1, 51).slice(-50), true])
    const first = await history(t, alice, direct.id, '?before=2')
    expect([seqs(first), first.body.has_more]).toEqual([[1], false])
    const none = await history(t, alice, direct.id, '?before=1')
    expect([seqs(none), none.body.has_more]).toEqual([[], false])
  })

  test('after=<seq> pages forward oldest first, ending with has_more false', async () => {
    await using t = await testApp()
    const { alice, bob, direct } = await setup(t)
    await seed(t, alice, direct.id, 60)
    const pages: Array<[number[], boolean]> = []
    let after = 0
    for (let guard = 0; guard < 10; guard++) {
      const reply = await history(t, bob, direct.id, `?limit=25&after=${after}`)
      expect(reply.status).toBe(200)
      pages.push([seqs(reply), reply.body.has_more])
      if (!reply.body.has_more) break
      after = reply.body.messages.at(-1).seq
    }
    expect(pages).toEqual([
      [range(1, 25), true],
      [range(26, 50), true],
      [range(51, 60), false],
    ])
    const caughtUp = await history(t, bob, direct.id, '?after=60')
    expect(caughtUp.body).toEqual({ messages: [], has_more: false })
    const fromMiddle = await history(t, bob, direct.id, '?after=55')
    expect([seqs(fromMiddle), fromMiddle.body.has_more]).toEqual([range(56, 60), false])
  })

  test('before and after together give the range between, paged from its oldest end', async () => {
    await using t = await testApp()
    const { alice, direct } = await setup(t)
    await seed(t, alice, direct.id, 60)
    const between = await history(t, alice, direct.id, '?after=10&before=20')
    expect([seqs(between), between.body.has_more]).toEqual([range(11, 19), false])
    const firstPart = await history(t, alice, direct.id, '?after=10&before=20&limit=5')
    expect([seqs(firstPart), firstPart.body.has_more]).toEqual([range(11, 15), true])
    const rest = await history(t, alice, direct.id, '?after=15&before=20&limit=5')
    expect([seqs(rest), rest.body.has_more]).toEqual([range(16, 19), false])
    const exact = await history(t, alice, direct.id, '?after=10&before=20&limit=9')
    expect([seqs(exact), exact.body.has_more]).toEqual([range(11, 19), false])
    const empty = await history(t, alice, direct.id, '?after=10&before=11')
    expect(empty.body).toEqual({ messages: [], has_more: false })
  })

  test("shows only this conversation's messages", async () => {
    await using t = await testApp()
    const { alice, bob, carol, direct } = await setup(t)
    const other = await conversation(t.app, bob, [carol])
    const mine = await send(t.app, alice, direct.id, 'for bob')
    await send(t.app, carol, other.id, 'for bob, elsewhere')
    expect((await history(t, bob, direct.id)).body).toEqual({ messages: [mine.body], has_more: false })
  })

  test('a non-member is 403, an unknown conversation 404, no token 401', async () => {
    await using t = await testApp()
    const { alice, carol, direct } = await setup(t)
    await seed(t, alice, direct.id, 3)
    const outsider = await history(t, carol, direct.id)
    expect(outsider.status).toBe(403)
    expect(outsider.body).toEqual({ error: { code: 'forbidden', message: expect.any(String) } })
    const unknown = await history(t, alice, 'no-such-conversation')
    expect(unknown.status).toBe(404)
    expect(unknown.body).toEqual({ error: { code: 'not_found', message: expect.any(String) } })
    const anonymous = await history(t, undefined, direct.id)
    expect(anonymous.status).toBe(401)
  })
})
