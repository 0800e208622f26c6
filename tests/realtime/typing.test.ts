import { afterEach, describe, expect, setSystemTime, test } from 'bun:test'
import { TYPING_INTERVAL_SECONDS } from '../../src/presence/service'
import { listen, testApp } from '../support/app'
import { account, call, conversation, send, uniqueName, type Account } from '../support/http'
import { TestSocket } from '../support/ws'

const connect = (ws: string, who: Account) => TestSocket.open(`${ws}?token=${who.token}`)
const htmlSocket = (ws: string, who: Account) => TestSocket.open(`${ws}?format=html&token=${who.token}`)

/** The typing frames a socket has been sent so far: everything before its pong. */
async function typingFrames(socket: TestSocket) {
  return (await socket.drain()).filter((f) => f.type === 'typing')
}

/** Sends typing frames on `socket`; once it answers the ping after them, each was passed on or dropped. */
async function type(socket: TestSocket, ...conversationIds: string[]) {
  for (const id of conversationIds) socket.send({ type: 'typing', conversation_id: id })
  await socket.drain()
}

afterEach(() => setSystemTime())

describe('typing', () => {
  test("reaches every socket of the conversation's other members, none of the typist's own devices, and is neither stored nor in the change stream", async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const [alice, bob, carol, dave] = [await account(t.app), await account(t.app), await account(t.app), await account(t.app)]
    const team = await conversation(t.app, alice, [bob, carol], 'Launch Team')
    // Dave shares another conversation with Alice, but not this one.
    await conversation(t.app, alice, [dave])
    using alicePhone = await connect(ws, alice)
    using aliceLaptop = await connect(ws, alice)
    using bobPhone = await connect(ws, bob)
    using bobLaptop = await connect(ws, bob)
    using carolPhone = await connect(ws, carol)
    using davePhone = await connect(ws, dave)

    await type(alicePhone, team.id)

    const expected = { type: 'typing', conversation_id: team.id, user_id: alice.id }
    for (const socket of [bobPhone, bobLaptop, carolPhone]) expect(await typingFrames(socket)).toEqual([expected])
    for (const socket of [alicePhone, aliceLaptop, davePhone]) expect(await typingFrames(socket)).toEqual([])

    // Nothing of it was stored: no change, no event_seq, nothing to replay.
    expect((await call(t.app, 'GET', `/conversations/${team.id}/events?after=0`, { token: bob.token })).body).toEqual({ events: [], has_more: false })
    const listed = (await call(t.app, 'GET', '/conversations', { token: bob.token })).body.conversations
    expect(listed.find((c: { id: string }) => c.id === team.id).last_event_seq).toBe(0)
    expect((await t.sql<{ n: number }>('SELECT count(*) AS n FROM conversation_events'))[0]!.n).toBe(0)

    // The typist's sockets were only stepped off the conversation for the typing frame: its messages still reach them.
    const sent = await send(t.app, bob, team.id, 'after the typing')
    for (const socket of [alicePhone, aliceLaptop]) expect((await socket.nextMessage()).id).toBe(sent.body.id)
  })

  test(`at most one every ${TYPING_INTERVAL_SECONDS} s per user and conversation is passed on; the others are dropped without an answer`, async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const [alice, bob, carol] = [await account(t.app), await account(t.app), await account(t.app)]
    const team = await conversation(t.app, alice, [bob, carol], 'Launch Team')
    const direct = await conversation(t.app, alice, [bob])
    using alicePhone = await connect(ws, alice)
    using aliceLaptop = await connect(ws, alice)
    using bobPhone = await connect(ws, bob)
    using carolPhone = await connect(ws, carol)
    const start = Date.now()
    setSystemTime(start)

    // Three from two devices of Alice in the team, and one in the 1-on-1: one each is passed on.
    await type(alicePhone, team.id, team.id)
    await type(aliceLaptop, team.id, direct.id)
    expect(await typingFrames(bobPhone)).toEqual([
      { type: 'typing', conversation_id: team.id, user_id: alice.id },
      { type: 'typing', conversation_id: direct.id, user_id: alice.id },
    ])
    // The dropped ones were not answered: the drain's pong was all.
    expect(alicePhone.received.filter((f) => !['ready', 'pong', 'presence'].includes(f.type))).toEqual([])
    // Bob's own typing in the same conversation is his: passed on.
    await type(bobPhone, team.id)
    expect(await typingFrames(carolPhone)).toEqual([
      { type: 'typing', conversation_id: team.id, user_id: alice.id },
      { type: 'typing', conversation_id: team.id, user_id: bob.id },
    ])

    // Just before the interval is over: still dropped. Once it is: the next one passes.
    setSystemTime(start + TYPING_INTERVAL_SECONDS * 1000 - 50)
    await type(alicePhone, team.id)
    expect(await typingFrames(bobPhone)).toEqual([])
    setSystemTime(start + TYPING_INTERVAL_SECONDS * 1000 + 50)
    await type(alicePhone, team.id)
    expect(await typingFrames(bobPhone)).toEqual([{ type: 'typing', conversation_id: team.id, user_id: alice.id }])
  })

  test('in a conversation one is not in, or that does not exist, or without a conversation_id, is an error frame like any other, and reaches nobody', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const [alice, bob, eve] = [await account(t.app), await account(t.app), await account(t.app)]
    const direct = await conversation(t.app, alice, [bob])
    using evePhone = await connect(ws, eve)
    using bobPhone = await connect(ws, bob)

    evePhone.send({ type: 'typing', conversation_id: direct.id })
    expect(await evePhone.nextOfType('error')).toEqual({ type: 'error', error: { code: 'forbidden', message: expect.any(String) }, conversation_id: direct.id })
    evePhone.send({ type: 'typing', conversation_id: '01a2b3c4-0000-7000-8000-000000000000' })
    expect(await evePhone.nextOfType('error')).toEqual({ type: 'error', error: { code: 'not_found', message: 'Conversation not found' }, conversation_id: '01a2b3c4-0000-7000-8000-000000000000' })
    evePhone.send({ type: 'typing' })
    expect(await evePhone.nextOfType('error')).toMatchObject({ type: 'error', error: { code: 'validation_failed', details: [{ field: 'conversation_id' }] } })

    expect(await evePhone.drain()).toEqual([])
    expect(await typingFrames(bobPhone)).toEqual([])
  })

  test("reaches the other members' web UI pages rendered, the name escaped, and not the typist's own page", async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app, uniqueName('alice'), '<img src=x onerror=alert(1)> Alice')
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    using alicePage = await htmlSocket(ws, alice)
    using bobPage = await htmlSocket(ws, bob)
    using alicePhone = await connect(ws, alice)

    alicePhone.send({ type: 'typing', conversation_id: direct.id })
    const push = (await bobPage.nextOfType('html')).html as string
    expect(push).toBe(
      `<hx-partial hx-target="#typing-${direct.id}" hx-swap="typing"><span class="typist" data-user="${alice.id}"><bdi>&lt;img src=x onerror=alert(1)&gt; Alice</bdi> is typing…</span></hx-partial>`,
    )
    expect(await alicePage.drain()).toEqual([])
    expect(await bobPage.drain()).toEqual([])
  })
})
