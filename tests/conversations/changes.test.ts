import { describe, expect, test } from 'bun:test'
import { pruneChanges } from '../../src/conversations/changes'
import { listen, testApp, type TestApp } from '../support/app'
import { account, call, conversation, send, type Account } from '../support/http'
import { TestSocket } from '../support/ws'

/**
 * The change stream (issue 17): every change to a conversation numbered by event_seq, in commit
 * order, without gaps; live frames carry it, and GET /conversations/{id}/events replays it.
 */

const events = (t: TestApp, who: Account, conversationId: string, query = '') => call(t.app, 'GET', `/conversations/${conversationId}/events${query}`, { token: who.token })

describe('GET /conversations/{id}/events', () => {
  test('replays each message as the very frame sockets got live, numbered 1, 2, 3, … in commit order', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    using bobSocket = await TestSocket.open(`${ws}?token=${bob.token}`)
    using aliceSocket = await TestSocket.open(`${ws}?token=${alice.token}`)
    await send(t.app, alice, direct.id, 'over REST')
    aliceSocket.send({ type: 'message', message_id: crypto.randomUUID(), conversation_id: direct.id, content: 'over a socket' })
    await send(t.app, bob, direct.id, 'REST again')
    const live = []
    for (let i = 0; i < 3; i++) live.push(await bobSocket.nextOfType('message'))
    expect(live.map((f) => f.event_seq)).toEqual([1, 2, 3])

    const replay = await events(t, bob, direct.id)
    expect(replay.status).toBe(200)
    expect(replay.body).toEqual({ events: live, has_more: false })
    const list = await call(t.app, 'GET', '/conversations', { token: alice.token })
    expect(list.body.conversations[0]).toMatchObject({ id: direct.id, last_seq: 3, last_event_seq: 3 })
  })

  test('after= and limit= page through the stream; has_more says whether more follow', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    for (let i = 1; i <= 7; i++) await send(t.app, i % 2 ? alice : bob, direct.id, `message ${i}`)
    const seqs = (reply: { body: { events: Array<{ event_seq: number; message: { seq: number } }> } }) => reply.body.events.map((e) => [e.event_seq, e.message.seq])
    const first = await events(t, alice, direct.id, '?limit=3')
    expect(seqs(first)).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ])
    expect(first.body.has_more).toBe(true)
    const next = await events(t, alice, direct.id, '?after=3&limit=3')
    expect(seqs(next).map(([e]) => e)).toEqual([4, 5, 6])
    expect(next.body.has_more).toBe(true)
    const last = await events(t, alice, direct.id, '?after=6&limit=3')
    expect(seqs(last).map(([e]) => e)).toEqual([7])
    expect(last.body.has_more).toBe(false)
    expect(await events(t, alice, direct.id, '?after=7')).toMatchObject({ status: 200, body: { events: [], has_more: false } })
    expect(await events(t, alice, direct.id, '?after=1000')).toMatchObject({ status: 200, body: { events: [], has_more: false } })
  })

  test('members only: 403 for anyone else, 404 for no conversation, 401 without a token, 422 naming a bad parameter', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const carol = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    await send(t.app, alice, direct.id, 'private')
    expect(await events(t, carol, direct.id)).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } })
    expect(await events(t, alice, 'no-such-conversation')).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } })
    expect((await call(t.app, 'GET', `/conversations/${direct.id}/events`)).status).toBe(401)
    for (const [query, field] of [
      ['?after=-1', 'after'],
      ['?after=one', 'after'],
      ['?limit=0', 'limit'],
      ['?limit=501', 'limit'],
      ['?limit=1.5', 'limit'],
    ]) {
      const reply = await events(t, alice, direct.id, query)
      expect({ query, status: reply.status, fields: reply.body.error?.details?.map((d: { field: string }) => d.field) }).toEqual({ query, status: 422, fields: [field] })
    }
  })
})

describe('retention (EVENT_RETENTION_DAYS)', () => {
  test('changes older than the retention are pruned: a catch-up from before them is 410 resync_required, one from after them is exact', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    const other = await conversation(t.app, alice, [await account(t.app)])
    const first = (await send(t.app, alice, direct.id, 'one')).body
    for (const content of ['one, edited', 'one, edited twice']) await call(t.app, 'PATCH', `/messages/${first.id}`, { token: alice.token, body: { content } })
    await send(t.app, bob, direct.id, 'two')
    await call(t.app, 'PUT', `/messages/${first.id}/reactions/${encodeURIComponent('👍')}`, { token: bob.token })
    await send(t.app, alice, direct.id, 'three')
    const otherFirst = (await send(t.app, alice, other.id, 'elsewhere')).body
    await call(t.app, 'PATCH', `/messages/${otherFirst.id}`, { token: alice.token, body: { content: 'elsewhere, edited' } })
    const before = (await events(t, bob, direct.id)).body.events
    expect(before.map((e: { type: string }) => e.type)).toEqual(['message', 'message_edited', 'message_edited', 'message', 'reaction', 'message'])

    const now = Date.now()
    const DAY = 86_400_000
    // The first edit is 40 days old, and the second (made on a node whose clock was behind) 31:
    // pruning keeps a suffix of the stream, so both go, and the reaction (today) stays.
    await t.sql('UPDATE conversation_events SET created_at = ? WHERE conversation_id = ? AND event_seq = 2', now - 40 * DAY, direct.id)
    await t.sql('UPDATE conversation_events SET created_at = ? WHERE conversation_id = ? AND event_seq = 3', now - 31 * DAY, direct.id)
    expect(await pruneChanges(t.deps.store, 30, now)).toBe(2)
    expect(await pruneChanges(t.deps.store, 30, now)).toBe(0)
    expect(await t.sql('SELECT pruned_event_seq AS e, pruned_after_seq AS s FROM conversations WHERE id = ?', direct.id)).toEqual([{ e: 3, s: 1 }])

    for (const after of [0, 1, 2]) expect(await events(t, bob, direct.id, `?after=${after}`)).toMatchObject({ status: 410, body: { error: { code: 'resync_required' } } })
    for (const after of [3, 4, 5, 6]) expect((await events(t, bob, direct.id, `?after=${after}`)).body.events).toEqual(before.slice(after))
    // The other conversation is untouched.
    expect((await events(t, alice, other.id)).body.events.map((e: { type: string }) => e.type)).toEqual(['message', 'message_edited'])
  })
})
