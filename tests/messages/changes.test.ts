import { describe, expect, test } from 'bun:test'
import { readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { listen, onPostgres, sqliteOf, testApp, type TestApp } from '../support/app'
import { account, call, conversation, send, type Account } from '../support/http'
import { type Frame, TestSocket } from '../support/ws'

/**
 * Edit and delete (issue 17): one service function each, over REST and WebSocket, numbered in
 * the conversation's change stream and delivered live.
 */

const ISO = expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)

const edit = (t: TestApp, who: Account, id: string, body: unknown) => call(t.app, 'PATCH', `/messages/${id}`, { token: who.token, body })
const remove = (t: TestApp, who: Account, id: string) => call(t.app, 'DELETE', `/messages/${id}`, { token: who.token })
const historyOf = async (t: TestApp, who: Account, conversationId: string) =>
  (await call(t.app, 'GET', `/conversations/${conversationId}/messages?limit=200`, { token: who.token })).body.messages
const eventsOf = async (t: TestApp, who: Account, conversationId: string, query = '') =>
  (await call(t.app, 'GET', `/conversations/${conversationId}/events${query}`, { token: who.token })).body
const lastEventSeq = async (t: TestApp, conversationId: string) =>
  Number((await t.sql<{ n: number }>('SELECT last_event_seq AS n FROM conversations WHERE id = ?', conversationId))[0]!.n)

async function people(t: TestApp) {
  const alice = await account(t.app)
  const bob = await account(t.app)
  const carol = await account(t.app)
  const direct = await conversation(t.app, alice, [bob])
  return { alice, bob, carol, direct }
}

describe('PATCH /messages/{id}', () => {
  test('its sender changes the content: 200 with edited_at, in history, and every socket gets message_edited with the next event_seq', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const { alice, bob, direct } = await people(t)
    const sent = (await send(t.app, alice, direct.id, 'helo')).body
    using bobSocket = await TestSocket.open(`${ws}?token=${bob.token}`)
    using aliceSocket = await TestSocket.open(`${ws}?token=${alice.token}`)
    const reply = await edit(t, alice, sent.id, { content: 'hello' })
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({ ...sent, content: 'hello', edited_at: ISO })
    const expected = { type: 'message_edited', conversation_id: direct.id, event_seq: 2, message: reply.body }
    expect(await bobSocket.nextOfType('message_edited')).toEqual(expected)
    expect(await aliceSocket.nextOfType('message_edited')).toEqual(expected)
    expect(await historyOf(t, bob, direct.id)).toEqual([reply.body])
    expect(await eventsOf(t, bob, direct.id)).toEqual({ events: [{ type: 'message', conversation_id: direct.id, event_seq: 1, message: reply.body }, expected], has_more: false })
  })

  test('the same content again changes nothing: 200 with the message as it is, no new change', async () => {
    await using t = await testApp()
    const { alice, direct } = await people(t)
    const sent = (await send(t.app, alice, direct.id, 'first')).body
    const edited = (await edit(t, alice, sent.id, { content: 'second' })).body
    expect(await lastEventSeq(t, direct.id)).toBe(2)
    expect(await edit(t, alice, sent.id, { content: 'second' })).toMatchObject({ status: 200, body: edited })
    expect(await lastEventSeq(t, direct.id)).toBe(2)
  })

  test("refused: someone else's message 403, a non-member 403, no such message 404, bad content 422, a deleted message 409; nothing changes", async () => {
    await using t = await testApp()
    const { alice, bob, carol, direct } = await people(t)
    const sent = (await send(t.app, alice, direct.id, 'original')).body
    expect(await edit(t, bob, sent.id, { content: 'hijacked' })).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } })
    expect(await edit(t, carol, sent.id, { content: 'hijacked' })).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } })
    expect(await edit(t, alice, 'no-such-message', { content: 'x' })).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } })
    for (const body of [{ content: '' }, { content: '   ' }, { content: 'x'.repeat(4001) }, { content: 'nul\u0000' }, {}, { content: 7 }]) {
      const reply = await edit(t, alice, sent.id, body)
      expect({ body, status: reply.status, fields: reply.body.error?.details?.map((d: { field: string }) => d.field) }).toEqual({ body, status: 422, fields: ['content'] })
    }
    expect((await remove(t, alice, sent.id)).status).toBe(204)
    expect(await edit(t, alice, sent.id, { content: 'too late' })).toMatchObject({ status: 409, body: { error: { code: 'message_deleted' } } })
    expect(await historyOf(t, alice, direct.id)).toEqual([{ ...sent, content: '', deleted_at: ISO }])
    expect(await lastEventSeq(t, direct.id)).toBe(2)
  })
})

describe('DELETE /messages/{id}', () => {
  test('its sender deletes: 204, the message keeps its seq with deleted_at and empty content, every socket gets message_deleted', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const { alice, bob, direct } = await people(t)
    const first = (await send(t.app, alice, direct.id, 'keep')).body
    const second = (await send(t.app, alice, direct.id, 'regret')).body
    using bobSocket = await TestSocket.open(`${ws}?token=${bob.token}`)
    expect((await remove(t, alice, second.id)).status).toBe(204)
    const deleted = { ...second, content: '', deleted_at: ISO }
    const frame = await bobSocket.nextOfType('message_deleted')
    expect(frame).toEqual({ type: 'message_deleted', conversation_id: direct.id, event_seq: 3, message: deleted })
    expect(await historyOf(t, bob, direct.id)).toEqual([first, frame.message])
    // Again: nothing more happens.
    expect((await remove(t, alice, second.id)).status).toBe(204)
    expect(await lastEventSeq(t, direct.id)).toBe(3)
  })

  test("a group's creator may delete anyone's message there; no one else may delete another's, nor in a 1-on-1", async () => {
    await using t = await testApp()
    const { alice, bob, carol, direct } = await people(t)
    const group = await conversation(t.app, alice, [bob, carol], 'Team')
    const bobs = (await send(t.app, bob, group.id, 'from bob')).body
    const carols = (await send(t.app, carol, group.id, 'from carol')).body
    expect(await remove(t, carol, bobs.id)).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } })
    expect((await remove(t, alice, bobs.id)).status).toBe(204)
    expect((await remove(t, carol, carols.id)).status).toBe(204)
    const inDirect = (await send(t.app, bob, direct.id, 'between us')).body
    expect(await remove(t, alice, inDirect.id)).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } })
    expect(await remove(t, carol, inDirect.id)).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } })
    expect(await remove(t, alice, 'no-such-message')).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } })
    expect((await historyOf(t, alice, direct.id))[0].deleted_at).toBeNull()
  })

  test('a retry of the first send after an edit or a deletion answers the message as it is now, and stores nothing', async () => {
    await using t = await testApp()
    const { alice, direct } = await people(t)
    const edited = (await send(t.app, alice, direct.id, 'typo', 'key-edited')).body
    const deleted = (await send(t.app, alice, direct.id, 'oops', 'key-deleted')).body
    const now = (await edit(t, alice, edited.id, { content: 'fixed' })).body
    await remove(t, alice, deleted.id)
    const retried = await send(t.app, alice, direct.id, 'typo', 'key-edited')
    expect(retried).toMatchObject({ status: 201, body: now })
    expect(retried.headers.get('idempotent-replayed')).toBe('true')
    expect((await send(t.app, alice, direct.id, 'oops', 'key-deleted')).body).toEqual({ ...deleted, content: '', deleted_at: ISO })
    expect((await t.sql<{ n: number }>('SELECT count(*) AS n FROM messages'))[0]!.n).toBe(2)
  })

  test.skipIf(onPostgres)('the content of a deleted message is gone from the database file and its write-ahead log', async () => {
    await using t = await testApp()
    const { alice, direct } = await people(t)
    const secret = `the-launch-code-is-${crypto.randomUUID()}`
    const sent = (await send(t.app, alice, direct.id, secret)).body
    await send(t.app, alice, direct.id, 'an unrelated message after it')
    const files = ['test.db', 'test.db-wal'].map((name) => join(t.dir, name)).filter((path) => existsSync(path))
    const contains = () => files.some((path) => readFileSync(path).includes(secret))
    expect(contains()).toBe(true)
    expect((await remove(t, alice, sent.id)).status).toBe(204)
    expect(contains()).toBe(false)
  })
})

describe('the change stream with edits and deletions', () => {
  test('messages, edits and deletions interleaved replay in commit order, each page of any size the same as the live frames', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const { alice, bob, direct } = await people(t)
    using bobSocket = await TestSocket.open(`${ws}?token=${bob.token}`)
    const m1 = (await send(t.app, alice, direct.id, 'one')).body
    const m2 = (await send(t.app, bob, direct.id, 'two')).body
    await edit(t, alice, m1.id, { content: 'one, edited' })
    await send(t.app, alice, direct.id, 'three')
    await remove(t, bob, m2.id)
    await edit(t, alice, m1.id, { content: 'one, edited again' })
    await send(t.app, bob, direct.id, 'four')
    const live: Frame[] = []
    while (live.length < 7) live.push(await bobSocket.next((f) => typeof f.event_seq === 'number', 'a change'))
    expect(live.map((f) => [f.event_seq, f.type])).toEqual([
      [1, 'message'],
      [2, 'message'],
      [3, 'message_edited'],
      [4, 'message'],
      [5, 'message_deleted'],
      [6, 'message_edited'],
      [7, 'message'],
    ])
    // A replay shows each message as it is now.
    const now = new Map((await historyOf(t, bob, direct.id)).map((m: { id: string }) => [m.id, m]))
    const expected = live.map((f) => ({ ...f, message: now.get(f.message.id) }))
    for (let after = 0; after <= 7; after++) {
      for (const limit of [1, 2, 3, 100]) {
        const page = await eventsOf(t, bob, direct.id, `?after=${after}&limit=${limit}`)
        expect({ after, limit, page }).toEqual({ after, limit, page: { events: expected.slice(after, after + limit), has_more: after + limit < 7 } })
      }
    }
  })
})

describe('edit and delete over WebSocket', () => {
  test('the same rules as REST: a change reaches every socket; a refusal is an error frame; a change of nothing is answered to the sender alone', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const { alice, bob, direct } = await people(t)
    const sent = (await send(t.app, alice, direct.id, 'draft')).body
    using aliceSocket = await TestSocket.open(`${ws}?token=${alice.token}`)
    using bobSocket = await TestSocket.open(`${ws}?token=${bob.token}`)

    aliceSocket.send({ type: 'edit', id: sent.id, content: 'final' })
    const edited = await bobSocket.nextOfType('message_edited')
    expect(edited).toEqual({ type: 'message_edited', conversation_id: direct.id, event_seq: 2, message: { ...sent, content: 'final', edited_at: ISO } })
    expect(await aliceSocket.nextOfType('message_edited')).toEqual(edited)

    bobSocket.send({ type: 'edit', id: sent.id, content: 'not yours' })
    expect(await bobSocket.nextOfType('error')).toMatchObject({ error: { code: 'forbidden' } })
    bobSocket.send({ type: 'edit', id: sent.id, content: '' })
    expect(await bobSocket.nextOfType('error')).toMatchObject({ error: { code: 'validation_failed' } })
    bobSocket.send({ type: 'delete', id: 'no-such-message' })
    expect(await bobSocket.nextOfType('error')).toMatchObject({ error: { code: 'not_found' } })

    // The same edit again: answered to Alice's socket alone, without an event_seq.
    aliceSocket.send({ type: 'edit', id: sent.id, content: 'final' })
    expect(await aliceSocket.nextOfType('message_edited')).toEqual({ type: 'message_edited', conversation_id: direct.id, message: edited.message })

    aliceSocket.send({ type: 'delete', id: sent.id })
    const deleted = await bobSocket.nextOfType('message_deleted')
    expect(deleted).toEqual({ type: 'message_deleted', conversation_id: direct.id, event_seq: 3, message: { ...edited.message, content: '', deleted_at: ISO } })
    expect(await aliceSocket.nextOfType('message_deleted')).toEqual(deleted)
    aliceSocket.send({ type: 'delete', id: sent.id })
    expect(await aliceSocket.nextOfType('message_deleted')).toEqual({ type: 'message_deleted', conversation_id: direct.id, message: deleted.message })
    aliceSocket.send({ type: 'ping' })
    await aliceSocket.nextOfType('pong')
    await bobSocket.drain()
    expect(bobSocket.received.filter((f) => f.type === 'message_deleted')).toHaveLength(1)
  })
})

const react = (t: TestApp, who: Account, id: string, emoji: string, method: 'PUT' | 'DELETE' = 'PUT') =>
  call(t.app, method, `/messages/${id}/reactions/${encodeURIComponent(emoji)}`, { token: who.token })

describe('reactions', () => {
  test('PUT adds one, DELETE takes it back, both idempotent: the message lists them, every socket gets a reaction frame per change', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const { alice, bob, direct } = await people(t)
    const sent = (await send(t.app, alice, direct.id, 'ship it?')).body
    using aliceSocket = await TestSocket.open(`${ws}?token=${alice.token}`)
    expect((await react(t, bob, sent.id, '👍')).status).toBe(204)
    expect((await react(t, bob, sent.id, '👍')).status).toBe(204)
    expect((await react(t, alice, sent.id, '🎉')).status).toBe(204)
    expect((await react(t, alice, sent.id, '👍')).status).toBe(204)
    expect((await historyOf(t, alice, direct.id))[0].reactions).toEqual([
      { emoji: '👍', user_ids: [bob.id, alice.id] },
      { emoji: '🎉', user_ids: [alice.id] },
    ])
    expect((await react(t, bob, sent.id, '👍', 'DELETE')).status).toBe(204)
    expect((await react(t, bob, sent.id, '👍', 'DELETE')).status).toBe(204)
    // Each emoji in the order of its earliest reaction still there.
    expect((await historyOf(t, alice, direct.id))[0].reactions).toEqual([
      { emoji: '🎉', user_ids: [alice.id] },
      { emoji: '👍', user_ids: [alice.id] },
    ])
    const base = { type: 'reaction', conversation_id: direct.id, message_id: sent.id }
    const frames = []
    for (let i = 0; i < 4; i++) frames.push(await aliceSocket.nextOfType('reaction'))
    expect(frames).toEqual([
      { ...base, event_seq: 2, emoji: '👍', user_id: bob.id, added: true },
      { ...base, event_seq: 3, emoji: '🎉', user_id: alice.id, added: true },
      { ...base, event_seq: 4, emoji: '👍', user_id: alice.id, added: true },
      { ...base, event_seq: 5, emoji: '👍', user_id: bob.id, added: false },
    ])
    expect((await eventsOf(t, bob, direct.id, '?after=1')).events).toEqual(frames)
    expect(await lastEventSeq(t, direct.id)).toBe(5)
  })

  test('one emoji, whatever its code points; anything else is 422 on emoji', async () => {
    await using t = await testApp()
    const { alice, direct } = await people(t)
    const sent = (await send(t.app, alice, direct.id, 'react to me')).body
    for (const emoji of ['👍', '👍🏽', '👩‍👩‍👧‍👦', '🏳️‍🌈', '🇫🇷', '1️⃣', '❤️', '©️']) expect({ emoji, status: (await react(t, alice, sent.id, emoji)).status }).toEqual({ emoji, status: 204 })
    for (const emoji of ['a', 'ok', '👍👍', '🇫', '1', ' ', '\u200b', '👍 ', '<b>', 'x'.repeat(100)]) {
      const reply = await react(t, alice, sent.id, emoji)
      expect({ emoji, status: reply.status, fields: reply.body.error?.details?.map((d: { field: string }) => d.field) }).toEqual({ emoji, status: 422, fields: ['emoji'] })
    }
  })

  test('refused: a non-member 403, no such message 404, a deleted message takes none (409); its reactions go with its deletion', async () => {
    await using t = await testApp()
    const { alice, bob, carol, direct } = await people(t)
    const sent = (await send(t.app, alice, direct.id, 'soon gone')).body
    expect(await react(t, carol, sent.id, '👍')).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } })
    expect(await react(t, alice, 'no-such-message', '👍')).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } })
    await react(t, bob, sent.id, '👍')
    await remove(t, alice, sent.id)
    expect((await historyOf(t, bob, direct.id))[0].reactions).toEqual([])
    expect((await t.sql<{ n: number }>('SELECT count(*) AS n FROM reactions'))[0]!.n).toBe(0)
    expect(await react(t, bob, sent.id, '🎉')).toMatchObject({ status: 409, body: { error: { code: 'message_deleted' } } })
    expect((await react(t, bob, sent.id, '👍', 'DELETE')).status).toBe(204)
  })

  test('over WebSocket: react and unreact frames, the same rules; a change of nothing is answered to the sender alone', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const { alice, bob, direct } = await people(t)
    const sent = (await send(t.app, alice, direct.id, 'hi')).body
    using aliceSocket = await TestSocket.open(`${ws}?token=${alice.token}`)
    using bobSocket = await TestSocket.open(`${ws}?token=${bob.token}`)
    bobSocket.send({ type: 'react', id: sent.id, emoji: '🔥' })
    const added = { type: 'reaction', conversation_id: direct.id, event_seq: 2, message_id: sent.id, emoji: '🔥', user_id: bob.id, added: true }
    expect(await aliceSocket.nextOfType('reaction')).toEqual(added)
    expect(await bobSocket.nextOfType('reaction')).toEqual(added)
    bobSocket.send({ type: 'react', id: sent.id, emoji: '🔥' })
    const { event_seq: _, ...unchanged } = added
    expect(await bobSocket.nextOfType('reaction')).toEqual(unchanged)
    bobSocket.send({ type: 'react', id: sent.id, emoji: 'fire' })
    expect(await bobSocket.nextOfType('error')).toMatchObject({ error: { code: 'validation_failed' } })
    bobSocket.send({ type: 'unreact', id: sent.id, emoji: '🔥' })
    expect(await aliceSocket.nextOfType('reaction')).toEqual({ ...added, event_seq: 3, added: false })
  })
})

describe('replies', () => {
  test('reply_to names a message of the same conversation, over REST and WebSocket; the message carries it', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const { alice, bob, direct } = await people(t)
    const question = (await send(t.app, alice, direct.id, 'lunch?')).body
    const answer = await call(t.app, 'POST', '/messages', { token: bob.token, body: { message_id: crypto.randomUUID(), conversation_id: direct.id, content: 'yes', reply_to: question.id } })
    expect(answer).toMatchObject({ status: 201, body: { reply_to: question.id } })
    using aliceSocket = await TestSocket.open(`${ws}?token=${alice.token}`)
    aliceSocket.send({ type: 'message', message_id: crypto.randomUUID(), conversation_id: direct.id, content: 'great', reply_to: answer.body.id })
    expect((await aliceSocket.nextOfType('message')).message.reply_to).toBe(answer.body.id)
    expect((await historyOf(t, bob, direct.id)).map((m: { reply_to: string | null }) => m.reply_to)).toEqual([null, question.id, answer.body.id])
  })

  test('a reply to a message of another conversation, or to none, is 422 on reply_to and stores nothing', async () => {
    await using t = await testApp()
    const { alice, bob, carol, direct } = await people(t)
    const elsewhere = await conversation(t.app, alice, [carol])
    const other = (await send(t.app, alice, elsewhere.id, 'elsewhere')).body
    for (const replyTo of [other.id, 'no-such-message', '', 'nul\u0000']) {
      const reply = await call(t.app, 'POST', '/messages', { token: bob.token, body: { message_id: crypto.randomUUID(), conversation_id: direct.id, content: 'x', reply_to: replyTo } })
      expect({ replyTo, status: reply.status, fields: reply.body.error?.details?.map((d: { field: string }) => d.field) }).toEqual({ replyTo, status: 422, fields: ['reply_to'] })
    }
    expect((await historyOf(t, bob, direct.id)).length).toBe(0)
  })
})

describe('a change stored but never announced', () => {
  test('(the node that stored it failed before announcing it) reaches every socket once its retry is answered', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const { alice, bob, direct } = await people(t)
    using bobSocket = await TestSocket.open(`${ws}?token=${bob.token}`)
    const first = (await send(t.app, alice, direct.id, 'announced')).body
    expect((await bobSocket.nextOfType('message')).message.id).toBe(first.id)
    // The next change is committed, but its announcement is lost, as when a node dies in between.
    const publish = t.deps.bus.publish
    let dropped = 0
    t.deps.bus.publish = (event) => {
      if (event.type === 'conversation.changed' && dropped === 0) dropped++
      else publish(event)
    }
    const lost = await send(t.app, alice, direct.id, 'stored, never announced', 'lost-key')
    expect(dropped).toBe(1)
    await bobSocket.drain()
    expect(bobSocket.received.filter((f) => f.type === 'message')).toHaveLength(1)
    // The client retries (on any node): the answer is the stored message, and the socket gets it.
    expect((await send(t.app, alice, direct.id, 'stored, never announced', 'lost-key')).body).toEqual(lost.body)
    expect(await bobSocket.next((f) => f.type === 'message' && f.message.id === lost.body.id, 'the lost message')).toMatchObject({ event_seq: 2 })
    await bobSocket.drain()
    expect(bobSocket.received.filter((f) => f.type === 'message').map((f) => f.event_seq)).toEqual([1, 2])
  })
})

describe.skipIf(onPostgres)('a deletion while the database is being read (SQLite)', () => {
  test('is answered 204 and stays committed when the checkpoint that empties the write-ahead log cannot run then', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    const secret = (await send(t.app, alice, direct.id, 'a secret')).body
    await send(t.app, alice, direct.id, 'another')
    // A read of the server's own connection left open mid-way (as an EXPLAIN of a search left one).
    const reading = sqliteOf(t).sqlite.query('SELECT id FROM messages').iterate()
    reading.next()
    try {
      expect((await call(t.app, 'DELETE', `/messages/${secret.id}`, { token: alice.token })).status).toBe(204)
    } finally {
      reading.return?.()
    }
    expect(await t.sql('SELECT content, deleted_at IS NOT NULL AS deleted FROM messages WHERE id = ?', secret.id)).toEqual([{ content: '', deleted: 1 }])
  })
})
