import { describe, expect, test } from 'bun:test'
import { listen, testApp, type TestApp } from '../support/app'
import { account, call, conversation, send, type Account } from '../support/http'
import * as conversations from '../../src/conversations/service'
import { TestSocket } from '../support/ws'

/**
 * Read positions (issue 18): each member's read position only moves forward; their unread count
 * is the messages of others after it, deleted ones excluded; every move is a `read` change that
 * every member's sockets get, and a catch-up replays it.
 */

const read = (t: TestApp, who: Account, conversationId: string, body: unknown) => call(t.app, 'POST', `/conversations/${conversationId}/read`, { token: who.token, body })
const reads = (t: TestApp, who: Account, conversationId: string) => call(t.app, 'GET', `/conversations/${conversationId}/reads`, { token: who.token })

async function listed(t: TestApp, who: Account, conversationId: string): Promise<{ last_read_seq: number; unread_count: number }> {
  const reply = await call(t.app, 'GET', '/conversations', { token: who.token })
  expect(reply.status).toBe(200)
  const item = reply.body.conversations.find((c: { id: string }) => c.id === conversationId)
  return { last_read_seq: item.last_read_seq, unread_count: item.unread_count }
}

describe('POST /conversations/{id}/read', () => {
  test("counts others' messages after the read position, not one's own nor deleted ones; reading moves it forward", async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    expect(await listed(t, bob, direct.id)).toEqual({ last_read_seq: 0, unread_count: 0 })

    const first = (await send(t.app, alice, direct.id, 'one')).body
    await send(t.app, bob, direct.id, 'my own')
    const third = (await send(t.app, alice, direct.id, 'three')).body
    await send(t.app, alice, direct.id, 'four')
    expect(await listed(t, bob, direct.id)).toEqual({ last_read_seq: 0, unread_count: 3 })
    expect(await listed(t, alice, direct.id)).toEqual({ last_read_seq: 0, unread_count: 1 })

    expect((await call(t.app, 'DELETE', `/messages/${third.id}`, { token: alice.token })).status).toBe(204)
    expect(await listed(t, bob, direct.id)).toEqual({ last_read_seq: 0, unread_count: 2 })

    const reply = await read(t, bob, direct.id, { seq: first.seq })
    expect(reply.status).toBe(204)
    expect(reply.body).toBe('')
    expect(await listed(t, bob, direct.id)).toEqual({ last_read_seq: 1, unread_count: 1 })
    expect(await read(t, bob, direct.id, { seq: 4 })).toMatchObject({ status: 204 })
    expect(await listed(t, bob, direct.id)).toEqual({ last_read_seq: 4, unread_count: 0 })
    // Alice's position is her own.
    expect(await listed(t, alice, direct.id)).toEqual({ last_read_seq: 0, unread_count: 1 })
  })

  test('only ever moves forward: a lower seq answers 204 and changes nothing; one past the newest message counts as the newest', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    for (let i = 1; i <= 3; i++) await send(t.app, alice, direct.id, `m${i}`)
    expect((await read(t, bob, direct.id, { seq: 2 })).status).toBe(204)
    expect((await read(t, bob, direct.id, { seq: 1 })).status).toBe(204)
    expect((await read(t, bob, direct.id, { seq: 0 })).status).toBe(204)
    expect(await listed(t, bob, direct.id)).toEqual({ last_read_seq: 2, unread_count: 1 })
    expect((await read(t, bob, direct.id, { seq: 1_000_000 })).status).toBe(204)
    expect(await listed(t, bob, direct.id)).toEqual({ last_read_seq: 3, unread_count: 0 })
    // The next message is unread: reading "ahead" did not swallow it.
    await send(t.app, alice, direct.id, 'm4')
    expect(await listed(t, bob, direct.id)).toEqual({ last_read_seq: 3, unread_count: 1 })
    // Only the moves are changes: 2, then 3 (the stream holds 4 messages and 2 reads).
    const stream = await call(t.app, 'GET', `/conversations/${direct.id}/events`, { token: bob.token })
    expect(stream.body.events.filter((e: { type: string }) => e.type === 'read').map((e: { seq: number }) => e.seq)).toEqual([2, 3])
  })

  test('every member\'s sockets get the read frame with its event_seq, the reader\'s other device too, and a catch-up replays it', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const carol = await account(t.app)
    const group = await conversation(t.app, alice, [bob, carol], 'Readers')
    await send(t.app, alice, group.id, 'hello')
    await send(t.app, carol, group.id, 'hi')
    using bobPhone = await TestSocket.open(`${ws}?token=${bob.token}`)
    using bobLaptop = await TestSocket.open(`${ws}?token=${bob.token}`)
    using aliceSocket = await TestSocket.open(`${ws}?token=${alice.token}`)

    expect((await read(t, bob, group.id, { seq: 2 })).status).toBe(204)
    const expected = { type: 'read', conversation_id: group.id, user_id: bob.id, seq: 2, event_seq: 3 }
    for (const socket of [bobPhone, bobLaptop, aliceSocket]) expect(await socket.nextOfType('read')).toEqual(expected)

    const replay = await call(t.app, 'GET', `/conversations/${group.id}/events?after=2`, { token: carol.token })
    expect(replay.body).toEqual({ events: [expected], has_more: false })
    // A read that moves nothing is no change: the next change is the next number.
    expect((await read(t, bob, group.id, { seq: 1 })).status).toBe(204)
    await send(t.app, alice, group.id, 'after')
    expect((await bobPhone.nextOfType('message')).event_seq).toBe(4)
    expect(bobPhone.received.filter((f) => f.type === 'read')).toHaveLength(1)
  })

  test('a socket that resumes after a disconnect gets the reads it missed, in order', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    await send(t.app, alice, direct.id, 'one')
    await send(t.app, alice, direct.id, 'two')
    // Bob's laptop is away while his phone reads.
    await read(t, bob, direct.id, { seq: 1 })
    await read(t, bob, direct.id, { seq: 2 })
    using laptop = await TestSocket.open(`${ws}?token=${bob.token}&resume=1`)
    laptop.send({ type: 'resume', positions: { [direct.id]: 2 } })
    await laptop.nextOfType('resumed')
    expect(laptop.received.filter((f) => f.type === 'read').map((f) => [f.seq, f.event_seq])).toEqual([
      [1, 3],
      [2, 4],
    ])
  })

  test('someone added to a group has read what was said before they came', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const carol = await account(t.app)
    const group = await conversation(t.app, alice, [bob], 'Before Carol')
    for (let i = 1; i <= 3; i++) await send(t.app, alice, group.id, `early ${i}`)
    expect((await call(t.app, 'POST', `/conversations/${group.id}/members`, { token: alice.token, body: { member_ids: [carol.id] } })).status).toBe(200)
    expect(await listed(t, carol, group.id)).toEqual({ last_read_seq: 3, unread_count: 0 })
    await send(t.app, alice, group.id, 'welcome')
    expect(await listed(t, carol, group.id)).toEqual({ last_read_seq: 3, unread_count: 1 })
  })

  test('refusals: 403 for a non-member, 404 for no conversation, 401 without a token, 422 naming seq, 400 for broken JSON', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const eve = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    await send(t.app, alice, direct.id, 'private')
    expect(await read(t, eve, direct.id, { seq: 1 })).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } })
    expect(await read(t, alice, 'no-such-conversation', { seq: 1 })).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } })
    expect((await call(t.app, 'POST', `/conversations/${direct.id}/read`, { body: { seq: 1 } })).status).toBe(401)
    for (const body of [{}, { seq: -1 }, { seq: 1.5 }, { seq: 'one' }, { seq: null }, { seq: 2 ** 60 }, []]) {
      const reply = await read(t, bob, direct.id, body)
      expect({ body, status: reply.status, fields: reply.body.error?.details?.map((d: { field: string }) => d.field) }).toEqual({ body, status: 422, fields: ['seq'] })
    }
    expect((await call(t.app, 'POST', `/conversations/${direct.id}/read`, { token: bob.token, raw: '{"seq":' })).status).toBe(400)
    expect(await listed(t, bob, direct.id)).toEqual({ last_read_seq: 0, unread_count: 1 })
  })
})

describe('GET /conversations/{id}/reads', () => {
  test("every member's read position, in the order they were added", async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const carol = await account(t.app)
    const group = await conversation(t.app, alice, [bob, carol], 'Receipts')
    for (let i = 1; i <= 3; i++) await send(t.app, alice, group.id, `m${i}`)
    await read(t, carol, group.id, { seq: 3 })
    await read(t, bob, group.id, { seq: 1 })
    const reply = await reads(t, alice, group.id)
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({
      reads: [
        { user_id: alice.id, seq: 0 },
        { user_id: bob.id, seq: 1 },
        { user_id: carol.id, seq: 3 },
      ],
    })
  })

  test('members only: 403, 404, 401', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const eve = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    expect(await reads(t, eve, direct.id)).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } })
    expect(await reads(t, alice, 'no-such-conversation')).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } })
    expect((await call(t.app, 'GET', `/conversations/${direct.id}/reads`)).status).toBe(401)
  })
})

describe('conversations.readingOf (what the web UI shows of reads)', () => {
  test("each viewer's own unread count in that conversation alone, and every member's position; non-members left out", async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const carol = await account(t.app)
    const withCarol = await conversation(t.app, carol, [bob])
    await send(t.app, carol, withCarol.id, 'one')
    const withAlice = await conversation(t.app, alice, [bob])
    await send(t.app, alice, withAlice.id, 'elsewhere')
    await send(t.app, carol, withCarol.id, 'two')
    await send(t.app, bob, withCarol.id, 'mine')
    await read(t, carol, withCarol.id, { seq: 2 })
    const reading = await conversations.readingOf(t.deps.store, withCarol.id, [bob.id, carol.id, alice.id])
    expect(Object.fromEntries(reading.unread)).toEqual({ [bob.id]: 2, [carol.id]: 1 })
    expect([...reading.reads]).toEqual([
      [carol.id, 2],
      [bob.id, 0],
    ])
  })
})
