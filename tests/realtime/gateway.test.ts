import { describe, expect, spyOn, test } from 'bun:test'
import { heapStats } from 'bun:jsc'
import { connect as tcpConnect } from 'node:net'
import { ACCESS_COOKIE, REFRESH_COOKIE } from '../../src/auth/credentials'
import * as conversations from '../../src/conversations/service'
import { CONTENT_HEX, captureLogs, listen, testApp, type TestApp } from '../support/app'
import { account, call, conversation, send, uniqueName, type Account } from '../support/http'
import { attemptUpgrade, TestSocket, type Frame } from '../support/ws'

/** A socket for `who`, authenticated with ?token= and past its `ready` frame. */
const connect = (wsUrl: string, who: Account) => TestSocket.open(`${wsUrl}?token=${who.token}`)

const messageFrame = (conversationId: string, content: string, messageId: string = crypto.randomUUID()) => ({
  type: 'message',
  message_id: messageId,
  conversation_id: conversationId,
  content,
})

async function history(t: TestApp, who: Account, conversationId: string): Promise<any[]> {
  const reply = await call(t.app, 'GET', `/conversations/${conversationId}/messages?limit=200`, { token: who.token })
  expect(reply.status).toBe(200)
  return reply.body.messages
}

const rowsWithMessageId = async (t: TestApp, messageId: string) =>
  (await t.sql<{ n: number }>('SELECT count(*) AS n FROM messages WHERE message_id = ?', messageId))[0]!.n

const messageCount = async (t: TestApp) => (await t.sql<{ n: number }>('SELECT count(*) AS n FROM messages'))[0]!.n

const messagesIn = (frames: Frame[]) => frames.filter((f) => f.type === 'message')

/** Listens, signs up Alice and Bob, and opens their 1-on-1. */
async function twoPeople(t: TestApp) {
  const { ws } = listen(t.app)
  const alice = await account(t.app)
  const bob = await account(t.app)
  const direct = await conversation(t.app, alice, [bob])
  return { ws, alice, bob, direct }
}

describe('/ws message delivery', () => {
  test('a message sent over one socket reaches every device of both people in a 1-on-1, the sending socket included, as the same frame', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app, uniqueName('alice'))
    const bob = await account(t.app, uniqueName('bob'))
    const direct = await conversation(t.app, alice, [bob])
    using alice1 = await connect(ws, alice)
    using alice2 = await connect(ws, alice)
    using bob1 = await connect(ws, bob)
    using bob2 = await connect(ws, bob)

    alice1.send(messageFrame(direct.id, 'hello bob', 'greeting-1'))

    const frames = await Promise.all([alice1, alice2, bob1, bob2].map((s) => s.nextOfType('message')))
    expect(frames[0]).toEqual({
      type: 'message',
      message: {
        id: expect.any(String),
        message_id: 'greeting-1',
        sender_id: alice.id,
        conversation_id: direct.id,
        content: 'hello bob',
        created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/),
        seq: 1,
        edited_at: null,
        deleted_at: null,
        reply_to: null,
        reactions: [],
      },
      conversation_id: direct.id,
      event_seq: 1,
    })
    for (const f of frames) expect(f).toEqual(frames[0]!)
    // Exactly one frame each: no duplicate for the sender through its own topic.
    for (const s of [alice1, alice2, bob1, bob2]) expect(await s.drain()).toEqual([])
    expect(await history(t, bob, direct.id)).toEqual([frames[0]!.message])
  })

  test("a message sent with POST /messages reaches every member's sockets and no one else's", async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const carol = await account(t.app)
    const group = await conversation(t.app, alice, [bob], 'alice and bob')
    // Carol is connected and has conversations of her own, just not this one.
    const elsewhere = await conversation(t.app, carol, [alice])
    using aliceSocket = await connect(ws, alice)
    using bobSocket = await connect(ws, bob)
    using carolSocket = await connect(ws, carol)

    const reply = await send(t.app, alice, group.id, 'members only')
    expect(reply.status).toBe(201)

    expect(await aliceSocket.nextMessage()).toEqual(reply.body)
    expect(await bobSocket.nextMessage()).toEqual(reply.body)
    expect(await carolSocket.drain()).toEqual([])
    expect(elsewhere.id).not.toBe(group.id)
  })

  test('the sequence of frames is the same on every socket and follows seq, even for concurrent senders', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const carol = await account(t.app)
    const group = await conversation(t.app, alice, [bob, carol], 'busy room')
    using aliceSocket = await connect(ws, alice)
    using bobSocket = await connect(ws, bob)
    using carolSocket = await connect(ws, carol)

    const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => send(t.app, i % 2 === 0 ? alice : bob, group.id, `message ${i}`)))
    expect(replies.map((r) => r.status)).toEqual(Array(30).fill(201))
    expect(replies.map((r) => r.body.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1))

    const seen: any[][] = []
    for (const socket of [aliceSocket, bobSocket, carolSocket]) {
      const messages: any[] = []
      for (let i = 0; i < 30; i++) messages.push(await socket.nextMessage())
      seen.push(messages)
    }
    const bySeq = [...replies.map((r) => r.body)].sort((a, b) => a.seq - b.seq).map((m) => m.id)
    for (const messages of seen) {
      expect(messages.map((m) => m.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1))
      expect(messages.map((m) => m.id)).toEqual(bySeq)
    }
    expect((await history(t, carol, group.id)).map((m) => m.id)).toEqual(bySeq)
  })

  test('ten people sending at once over their own sockets: every subscriber sees one order, and it is seq order', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const people = await Promise.all(Array.from({ length: 10 }, () => account(t.app)))
    const [owner, ...rest] = people
    const room = await conversation(t.app, owner!, rest, 'ten senders')
    const sockets = await Promise.all(people.map((p) => connect(ws, p)))
    try {
      for (const [i, socket] of sockets.entries()) {
        for (let n = 0; n < 10; n++) socket.send(messageFrame(room.id, `sender ${i} message ${n}`))
      }
      const seen = await Promise.all(sockets.map(async (socket) => Promise.all(Array.from({ length: 100 }, () => socket.nextMessage()))))
      const first = seen[0]!.map((m) => m.id)
      for (const messages of seen) {
        expect(messages.map((m) => m.id)).toEqual(first)
        expect(messages.map((m) => m.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
      }
      expect((await history(t, owner!, room.id)).map((m) => m.id)).toEqual(first)
    } finally {
      for (const socket of sockets) socket.close()
    }
  })

  test('a socket gets the messages of each of its conversations and of no other', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const carol = await account(t.app)
    const withBob = await conversation(t.app, alice, [bob])
    const withCarol = await conversation(t.app, carol, [alice])
    const withoutAlice = await conversation(t.app, bob, [carol])
    using aliceSocket = await connect(ws, alice)

    const fromBob = (await send(t.app, bob, withBob.id, 'from bob')).body
    const aside = await send(t.app, carol, withoutAlice.id, 'not for alice')
    const fromCarol = (await send(t.app, carol, withCarol.id, 'from carol')).body
    expect(aside.status).toBe(201)

    expect(await aliceSocket.nextMessage()).toEqual(fromBob)
    expect(await aliceSocket.nextMessage()).toEqual(fromCarol)
    expect(await aliceSocket.drain()).toEqual([])
  })

  test("closing one of a person's two sockets leaves the other receiving messages and new conversations", async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const carol = await account(t.app, uniqueName('carol'), 'Carol Jones')
    const direct = await conversation(t.app, alice, [bob])
    using phone = await connect(ws, alice)
    using laptop = await connect(ws, alice)

    phone.close()
    await phone.closed

    const message = (await send(t.app, bob, direct.id, 'still there?')).body
    expect(await laptop.nextMessage()).toEqual(message)

    // The gateway still knows alice is connected: a new conversation is announced and followed.
    const fresh = await conversation(t.app, carol, [alice])
    expect((await laptop.nextOfType('conversation')).conversation).toMatchObject({ id: fresh.id, display_name: 'Carol Jones' })
    const next = (await send(t.app, carol, fresh.id, 'hi alice')).body
    expect(await laptop.nextMessage()).toEqual(next)
    expect(await laptop.drain()).toEqual([])
  })
})

describe('/ws answer order', () => {
  test("a socket's frames are answered in the order sent, though a send is answered only after its batch commits", async () => {
    await using t = await testApp()
    const { ws, alice, direct } = await twoPeople(t)
    using socket = await connect(ws, alice)
    const retry = messageFrame(direct.id, 'first', 'first-1')
    socket.send(retry)
    await socket.nextOfType('message')
    // A new message, a retry (answered to this socket alone), a bad frame and a ping, back to back.
    for (const f of [messageFrame(direct.id, 'second', 'second-1'), retry, { type: 'nonsense' }, { type: 'ping' }]) socket.send(f)
    await socket.nextOfType('pong')
    expect(socket.received.slice(-4).map((f) => (f.type === 'message' ? f.message.content : f.type === 'error' ? f.error.code : f.type))).toEqual([
      'second',
      'first',
      'unknown_type',
      'pong',
    ])
  })
})

describe('/ws conversation discovery', () => {
  test('a socket opened before a 1-on-1 exists is told about it, named after the other person, and gets its messages without joining', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app, uniqueName('alice'), 'Alice Smith')
    const bob = await account(t.app, uniqueName('bob'))
    using bobSocket = await connect(ws, bob)
    using aliceSocket = await connect(ws, alice)

    const created = await conversation(t.app, alice, [bob])

    const announced = await bobSocket.nextOfType('conversation')
    expect(announced).toEqual({
      type: 'conversation',
      conversation: {
        id: created.id,
        title: null,
        members: [alice.id, bob.id],
        is_group: false,
        member_count: 2,
        display_name: 'Alice Smith',
        created_at: expect.any(String),
        last_message_at: null,
        last_seq: 0,
        last_event_seq: 0,
      },
    })
    // Alice sees the same conversation named after bob (who has no full name: his username).
    expect((await aliceSocket.nextOfType('conversation')).conversation).toMatchObject({ id: created.id, display_name: bob.username })

    const sent = await send(t.app, alice, created.id, 'found you')
    expect(await bobSocket.nextMessage()).toEqual(sent.body)
    expect(bobSocket.received.map((f) => f.type)).toEqual(['ready', 'conversation', 'message'])
    expect(bobSocket.received.some((f) => f.type === 'joined')).toBe(false)
  })

  test('a new group is announced to every connected member under its title', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const carol = await account(t.app)
    const dave = await account(t.app)
    using bobSocket = await connect(ws, bob)
    using carolSocket = await connect(ws, carol)
    using daveSocket = await connect(ws, dave)

    const group = await conversation(t.app, alice, [bob, carol], 'Weekend plans')

    for (const socket of [bobSocket, carolSocket]) {
      expect((await socket.nextOfType('conversation')).conversation).toMatchObject({
        id: group.id,
        is_group: true,
        title: 'Weekend plans',
        display_name: 'Weekend plans',
        members: [alice.id, bob.id, carol.id],
      })
    }
    const sent = (await send(t.app, carol, group.id, 'saturday?')).body
    expect(await bobSocket.nextMessage()).toEqual(sent)
    expect(await carolSocket.nextMessage()).toEqual(sent)
    expect(await daveSocket.drain()).toEqual([])
  })

  test('reopening an existing 1-on-1 announces nothing again', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    using bobSocket = await connect(ws, bob)
    const first = await conversation(t.app, alice, [bob])
    await bobSocket.nextOfType('conversation')

    const again = await call(t.app, 'POST', '/conversations', { token: bob.token, body: { member_ids: [alice.id] } })
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(again.body.id).toBe(first.id)
    expect(await bobSocket.drain()).toEqual([])
  })
})

describe('/ws join', () => {
  test('a member who joins is answered with joined, and still gets each message once', async () => {
    await using t = await testApp()
    const { ws, alice, bob, direct } = await twoPeople(t)
    using bobSocket = await connect(ws, bob)

    bobSocket.send({ type: 'join', conversation_id: direct.id })
    expect(await bobSocket.next()).toEqual({ type: 'joined', conversation_id: direct.id })

    const sent = (await send(t.app, alice, direct.id, 'once')).body
    expect(await bobSocket.nextMessage()).toEqual(sent)
    expect(await bobSocket.drain()).toEqual([])
  })

  test('joining a conversation one is not in is forbidden, an unknown one is not_found, and the socket stays usable', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const mallory = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    const own = await conversation(t.app, mallory, [alice])
    using snoop = await connect(ws, mallory)

    snoop.send({ type: 'join', conversation_id: direct.id })
    expect(await snoop.next()).toEqual({ type: 'error', error: { code: 'forbidden', message: expect.any(String) }, conversation_id: direct.id })

    snoop.send({ type: 'join', conversation_id: 'no-such-conversation' })
    expect(await snoop.next()).toEqual({
      type: 'error',
      error: { code: 'not_found', message: expect.any(String) },
      conversation_id: 'no-such-conversation',
    })

    // Still open, still not subscribed to what it was refused, and able to join its own.
    await send(t.app, alice, direct.id, 'private')
    expect(await snoop.drain()).toEqual([])
    snoop.send({ type: 'join', conversation_id: own.id })
    expect(await snoop.next()).toEqual({ type: 'joined', conversation_id: own.id })
  })

  test('a join without a conversation_id is validation_failed', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    using socket = await connect(ws, alice)

    socket.send({ type: 'join' })
    const error = await socket.nextOfType('error')
    expect(error.error.code).toBe('validation_failed')
    expect(error.error.details.map((d: { field: string }) => d.field)).toContain('conversation_id')
    expect(await socket.drain()).toEqual([])
  })
})

describe('/ws idempotent retries', () => {
  test('a sequential retry stores nothing new, is answered to the sender alone with the stored message, and others see one frame', async () => {
    await using t = await testApp()
    const { ws, alice, bob, direct } = await twoPeople(t)
    using aliceSocket = await connect(ws, alice)
    using aliceOther = await connect(ws, alice)
    using bobSocket = await connect(ws, bob)
    const frame = messageFrame(direct.id, 'exactly once', 'retry-me')

    aliceSocket.send(frame)
    const original = await aliceSocket.nextMessage()
    expect(await bobSocket.nextMessage()).toEqual(original)
    expect(await aliceOther.nextMessage()).toEqual(original)

    aliceSocket.send(frame)
    expect(await aliceSocket.nextMessage()).toEqual(original)

    expect(await aliceSocket.drain()).toEqual([])
    expect(await aliceOther.drain()).toEqual([])
    expect(await bobSocket.drain()).toEqual([])
    expect(await history(t, bob, direct.id)).toEqual([original])
  })

  test('the same frame fired five times from each of two sockets at once is stored once', async () => {
    await using t = await testApp()
    const { ws, alice, bob, direct } = await twoPeople(t)
    using first = await connect(ws, alice)
    using second = await connect(ws, alice)
    using bobSocket = await connect(ws, bob)
    const frame = messageFrame(direct.id, 'storm', 'concurrent-key')

    for (let i = 0; i < 5; i++) {
      first.send(frame)
      second.send(frame)
    }
    // Each socket's pong follows its own five frames; a second round follows the other's too.
    await Promise.all([first.drain(), second.drain()])
    await Promise.all([first.drain(), second.drain()])

    expect(await rowsWithMessageId(t, 'concurrent-key')).toBe(1)
    const firstMessages = messagesIn(first.received)
    const secondMessages = messagesIn(second.received)
    // One creation, published to both sockets, and nine retries answered to their sender alone.
    expect([firstMessages.length, secondMessages.length].sort()).toEqual([5, 6])
    const stored = firstMessages[0]!.message
    for (const f of [...firstMessages, ...secondMessages]) expect(f.message).toEqual(stored)
    expect([...first.received, ...second.received].some((f) => f.type === 'error')).toBe(false)

    expect(await bobSocket.nextMessage()).toEqual(stored)
    expect(await bobSocket.drain()).toEqual([])
  })

  test('a retry over the socket of a message first sent by REST returns the same stored message, and the other way round', async () => {
    await using t = await testApp()
    const { ws, alice, bob, direct } = await twoPeople(t)
    using aliceSocket = await connect(ws, alice)
    using bobSocket = await connect(ws, bob)

    const rest = await send(t.app, alice, direct.id, 'rest first', 'rest-then-ws')
    expect(rest.status).toBe(201)
    expect(await aliceSocket.nextMessage()).toEqual(rest.body)
    aliceSocket.send(messageFrame(direct.id, 'rest first', 'rest-then-ws'))
    expect(await aliceSocket.nextMessage()).toEqual(rest.body)

    aliceSocket.send(messageFrame(direct.id, 'socket first', 'ws-then-rest'))
    const viaSocket = await aliceSocket.nextMessage()
    const retry = await send(t.app, alice, direct.id, 'socket first', 'ws-then-rest')
    expect(retry.status).toBe(201)
    expect(retry.headers.get('idempotent-replayed')).toBe('true')
    expect(retry.body).toEqual(viaSocket)

    expect(await bobSocket.nextMessage()).toEqual(rest.body)
    expect(await bobSocket.nextMessage()).toEqual(viaSocket)
    expect(await bobSocket.drain()).toEqual([])
    expect(await aliceSocket.drain()).toEqual([])
    expect((await history(t, alice, direct.id)).map((m) => m.message_id)).toEqual(['rest-then-ws', 'ws-then-rest'])
  })

  test('the same message_id from two different people is two messages', async () => {
    await using t = await testApp()
    const { ws, alice, bob, direct } = await twoPeople(t)
    using aliceSocket = await connect(ws, alice)
    using bobSocket = await connect(ws, bob)

    aliceSocket.send(messageFrame(direct.id, 'same key', 'shared-key'))
    const fromAlice = await bobSocket.nextMessage()
    bobSocket.send(messageFrame(direct.id, 'same key', 'shared-key'))
    const fromBob = await aliceSocket.nextMessage((m) => m.sender_id === bob.id)

    expect(fromAlice).toMatchObject({ sender_id: alice.id, seq: 1 })
    expect(fromBob).toMatchObject({ sender_id: bob.id, seq: 2 })
    expect(await rowsWithMessageId(t, 'shared-key')).toBe(2)
  })

  test('reusing a message_id for other content or another conversation is a conflict, and stores nothing', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const carol = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    const other = await conversation(t.app, alice, [carol])
    using aliceSocket = await connect(ws, alice)
    using bobSocket = await connect(ws, bob)

    aliceSocket.send(messageFrame(direct.id, 'original', 'used-once'))
    const original = await aliceSocket.nextMessage()

    aliceSocket.send(messageFrame(direct.id, 'edited', 'used-once'))
    expect(await aliceSocket.next()).toEqual({
      type: 'error',
      error: { code: 'conflict', message: expect.any(String) },
      message_id: 'used-once',
      conversation_id: direct.id,
    })
    aliceSocket.send(messageFrame(other.id, 'original', 'used-once'))
    expect(await aliceSocket.next()).toMatchObject({ type: 'error', error: { code: 'conflict' }, message_id: 'used-once' })

    expect(await history(t, alice, direct.id)).toEqual([original])
    expect(await history(t, alice, other.id)).toEqual([])
    expect(await bobSocket.nextMessage()).toEqual(original)
    expect(await bobSocket.drain()).toEqual([])
    expect(await aliceSocket.drain()).toEqual([])
  })

  // SQLite stores UTF-8 and would turn a lone surrogate into U+FFFD, so a retry would no longer
  // match what was stored: such text is refused up front, the same way every time.
  test('a message containing a lone surrogate is refused as invalid, and its retry the same way, never as a conflict', async () => {
    await using t = await testApp()
    const { ws, alice, direct } = await twoPeople(t)
    using aliceSocket = await connect(ws, alice)
    const frame = messageFrame(direct.id, 'broken \uD800 half', 'lone-surrogate')

    aliceSocket.send(frame)
    const first = await aliceSocket.next()
    aliceSocket.send(frame)
    const second = await aliceSocket.next()

    expect(second).toEqual(first)
    expect(first).toMatchObject({ type: 'error', error: { code: 'validation_failed', details: [{ field: 'content' }] }, message_id: 'lone-surrogate' })
    expect(await history(t, alice, direct.id)).toEqual([])
  })
})

describe('/ws bad frames', () => {
  type Case = {
    name: string
    frame: (conversations: { mine: string; theirs: string; otherUser: string }) => unknown
    code: string
    messageId?: string
    fields?: string[]
  }
  const cases: Case[] = [
    { name: 'text that is not JSON', frame: () => 'hello there', code: 'invalid_json' },
    { name: 'truncated JSON', frame: () => '{"type":"message","content":', code: 'invalid_json' },
    { name: 'a JSON array', frame: () => '[{"type":"ping"}]', code: 'invalid_frame' },
    { name: 'a JSON number', frame: () => '42', code: 'invalid_frame' },
    { name: 'JSON null', frame: () => 'null', code: 'invalid_frame' },
    { name: 'an object whose type is not a string', frame: () => ({ type: 7 }), code: 'invalid_frame' },
    { name: 'an unknown type', frame: () => ({ type: 'whisper', message_id: 'whisper-1' }), code: 'unknown_type', messageId: 'whisper-1' },
    {
      name: 'a message without content',
      frame: (c) => ({ type: 'message', message_id: 'no-content', conversation_id: c.mine }),
      code: 'validation_failed',
      messageId: 'no-content',
      fields: ['content'],
    },
    {
      name: 'a message of only whitespace',
      frame: (c) => messageFrame(c.mine, ' \n\t\u00a0 ', 'blank'),
      code: 'validation_failed',
      messageId: 'blank',
      fields: ['content'],
    },
    {
      name: 'a message of 4001 characters',
      frame: (c) => messageFrame(c.mine, 'x'.repeat(4001), 'too-long'),
      code: 'validation_failed',
      messageId: 'too-long',
      fields: ['content'],
    },
    {
      name: 'a message_id with a space',
      frame: (c) => messageFrame(c.mine, 'hi', 'has space'),
      code: 'validation_failed',
      messageId: 'has space',
      fields: ['message_id'],
    },
    {
      name: 'a message without a conversation_id',
      frame: () => ({ type: 'message', message_id: 'nowhere', content: 'hi' }),
      code: 'validation_failed',
      messageId: 'nowhere',
      fields: ['conversation_id'],
    },
    { name: "a message to a conversation one is not in", frame: (c) => messageFrame(c.theirs, 'let me in', 'intruder'), code: 'forbidden', messageId: 'intruder' },
    { name: 'a message to an unknown conversation', frame: () => messageFrame('no-such-conversation', 'hi', 'lost'), code: 'not_found', messageId: 'lost' },
    {
      name: "a message claiming someone else's sender_id",
      frame: (c) => ({ ...messageFrame(c.mine, 'it was me', 'impostor'), sender_id: c.otherUser }),
      code: 'forbidden',
      messageId: 'impostor',
    },
  ]

  test.each(cases.map((c) => [c.name, c] as const))('%s is an error frame, stores nothing, and leaves the socket open', async (_, c) => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const carol = await account(t.app)
    const mine = await conversation(t.app, alice, [bob])
    const theirs = await conversation(t.app, bob, [carol])
    using socket = await connect(ws, alice)
    using bobSocket = await connect(ws, bob)

    socket.send(c.frame({ mine: mine.id, theirs: theirs.id, otherUser: bob.id }))
    const error = await socket.next()
    expect(error.type).toBe('error')
    expect(error.error.code).toBe(c.code)
    expect(error.error.message).toEqual(expect.any(String))
    if (c.messageId === undefined) expect(error).not.toHaveProperty('message_id')
    else expect(error.message_id).toBe(c.messageId)
    // (Contains rather than equals: see the todo below on a spurious "type" detail.)
    if (c.fields) expect(error.error.details.map((d: { field: string }) => d.field)).toEqual(expect.arrayContaining(c.fields))
    else expect(error.error).not.toHaveProperty('details')

    expect(await messageCount(t)).toBe(0)
    expect(await bobSocket.drain()).toEqual([])
    // Still open and working: a good message goes through afterwards.
    socket.send(messageFrame(mine.id, 'after the error'))
    expect((await socket.nextMessage()).content).toBe('after the error')
    expect(await socket.drain()).toEqual([])
  })

  // Elysia edits the schema objects routes use (additionalProperties: false) when it compiles them;
  // the services validate with a private copy, so a frame's "type" is never reported.
  test('validation details of a message frame name only the faulty fields, even after a REST message', async () => {
    await using t = await testApp()
    const { ws, alice, direct } = await twoPeople(t)
    using socket = await connect(ws, alice)
    expect((await send(t.app, alice, direct.id, 'first by REST')).status).toBe(201)
    await socket.nextMessage()

    socket.send(messageFrame(direct.id, 'hi', 'has space'))
    const error = await socket.nextOfType('error')
    expect(error.error).toEqual({
      code: 'validation_failed',
      message: 'message_id must be 1–128 visible ASCII characters, e.g. a UUID',
      details: [{ field: 'message_id', message: 'must be 1–128 visible ASCII characters, e.g. a UUID' }],
    })
  })

  // Elysia's parser would decode a text frame starting with '"' before the gateway saw it; the
  // gateway reads frames raw, so a JSON string holding a frame is not run.
  test('a frame that is a JSON string is invalid_frame and is never decoded a second time', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    using socket = await connect(ws, alice)

    socket.send('"hello"')
    expect((await socket.next()).error?.code).toBe('invalid_frame')
    socket.send(JSON.stringify(JSON.stringify({ type: 'ping' })))
    expect(await socket.next()).toMatchObject({ type: 'error', error: { code: 'invalid_frame' } })
  })

  test('a frame without a type still echoes its message_id', async () => {
    await using t = await testApp()
    const { ws, alice, direct } = await twoPeople(t)
    using socket = await connect(ws, alice)

    socket.send({ message_id: 'untyped', conversation_id: direct.id, content: 'hi' })
    expect(await socket.next()).toMatchObject({ type: 'error', error: { code: 'invalid_frame' }, message_id: 'untyped' })
  })

  test('content of exactly 4000 four-byte emoji is accepted and round-trips byte for byte; 4001 is refused', async () => {
    await using t = await testApp()
    const { ws, alice, bob, direct } = await twoPeople(t)
    using aliceSocket = await connect(ws, alice)
    using bobSocket = await connect(ws, bob)
    const content = '😀'.repeat(4000)
    expect(content.length).toBe(8000)

    aliceSocket.send(messageFrame(direct.id, content, 'emoji-4000'))
    const received = await bobSocket.nextMessage()
    expect(received.content).toBe(content)
    expect(Buffer.from(received.content).equals(Buffer.from(content))).toBe(true)
    expect((await aliceSocket.nextMessage()).content).toBe(content)
    const [row] = await t.sql<{ hex: string }>(`SELECT ${CONTENT_HEX} AS hex FROM messages WHERE message_id = ?`, 'emoji-4000')
    expect(row!.hex).toBe(Buffer.from(content).toString('hex').toUpperCase())
    expect((await history(t, bob, direct.id))[0].content).toBe(content)

    aliceSocket.send(messageFrame(direct.id, '😀'.repeat(4001), 'emoji-4001'))
    const error = await aliceSocket.nextOfType('error')
    expect(error).toMatchObject({ error: { code: 'validation_failed', details: [{ field: 'content' }] }, message_id: 'emoji-4001' })
    expect(await rowsWithMessageId(t, 'emoji-4001')).toBe(0)
    expect(await bobSocket.drain()).toEqual([])
  })

  test('a frame over 64 KiB closes the socket with 1009, and one of exactly 64 KiB is answered', async () => {
    await using t = await testApp()
    const { ws, alice, direct } = await twoPeople(t)
    using socket = await connect(ws, alice)

    const frameOf = (bytes: number) => {
      const json = JSON.stringify(messageFrame(direct.id, '', 'big'))
      const filled = JSON.stringify(messageFrame(direct.id, 'x'.repeat(bytes - json.length), 'big'))
      expect(Buffer.byteLength(filled)).toBe(bytes)
      return filled
    }
    socket.send(frameOf(64 * 1024))
    expect(await socket.nextOfType('error')).toMatchObject({ error: { code: 'validation_failed' }, message_id: 'big' })

    socket.send(frameOf(64 * 1024 + 1))
    expect((await socket.closed).code).toBe(1009)
    expect(await messageCount(t)).toBe(0)
  })
})

describe('/ws authentication', () => {
  test('an upgrade without any credentials is 401 missing_token', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const reply = await attemptUpgrade(`${http}/ws`)
    expect(reply).toEqual({ status: 401, body: { error: { code: 'missing_token', message: expect.any(String) } } })
  })

  test('a garbage token, in the query or the header, is 401', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    expect((await attemptUpgrade(`${http}/ws?token=not.a.jwt`)).status).toBe(401)
    expect((await attemptUpgrade(`${http}/ws`, { authorization: 'Bearer not.a.jwt' })).status).toBe(401)
  })

  test('a refresh token is refused as invalid_token', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app)
    const viaQuery = await attemptUpgrade(`${http}/ws?token=${alice.refresh}`)
    expect(viaQuery).toMatchObject({ status: 401, body: { error: { code: 'invalid_token' } } })
    expect((await attemptUpgrade(`${http}/ws`, { authorization: `Bearer ${alice.refresh}` })).status).toBe(401)
  })

  test('a token for an account that no longer exists is 401', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app)
    await t.sql('DELETE FROM users WHERE id = ?', alice.id)
    expect((await attemptUpgrade(`${http}/ws?token=${alice.token}`)).status).toBe(401)
  })

  test('an access token in ?token= or in an Authorization header opens a socket for that person', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    using viaQuery = await connect(ws, alice)
    using viaHeader = await TestSocket.open(ws, { headers: { authorization: `Bearer ${alice.token}` } })
    expect(viaQuery.received[0]).toEqual({ type: 'ready', user_id: alice.id })
    expect(viaHeader.received[0]).toEqual({ type: 'ready', user_id: alice.id })
  })

  test('the session cookie opens a socket when the Origin is the server itself', async () => {
    await using t = await testApp()
    const { http, ws } = listen(t.app)
    const alice = await account(t.app)
    using socket = await TestSocket.open(ws, { headers: { cookie: `pneumatic_access=${alice.token}`, origin: http } })
    expect(socket.received[0]).toEqual({ type: 'ready', user_id: alice.id })
  })

  test('the session cookie is refused with 403 from a foreign Origin, another port, or no Origin at all', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app)
    const cookie = `pneumatic_access=${alice.token}`
    const attempts: Record<string, string>[] = [{ cookie, origin: 'http://evil.example' }, { cookie, origin: 'http://127.0.0.1:1' }, { cookie }, { cookie, origin: 'null' }]
    for (const headers of attempts) {
      const reply = await attemptUpgrade(`${http}/ws`, headers)
      expect(reply).toEqual({ status: 403, body: { error: { code: 'forbidden', message: expect.any(String) } } })
    }
  })

  test('an explicit bad token is not rescued by a valid cookie', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app)
    const reply = await attemptUpgrade(`${http}/ws?token=not.a.jwt`, { cookie: `pneumatic_access=${alice.token}`, origin: http })
    expect(reply.status).toBe(401)
  })
})

/** The head of the server's answer to an upgrade sent over raw TCP, with `headers` added. */
async function upgradeHead(http: string, path: string, headers: Record<string, string>, upgrade = 'websocket'): Promise<string> {
  const { hostname, port, host } = new URL(http)
  const socket = tcpConnect(Number(port), hostname)
  let received = ''
  const head = new Promise<string>((resolve, reject) => {
    socket.on('data', (data) => {
      received += String(data)
      if (received.includes('\r\n\r\n')) resolve(received.slice(0, received.indexOf('\r\n\r\n')))
    })
    socket.on('close', () => reject(new Error(`closed before a whole head: ${received}`)))
  })
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: ${upgrade}\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
      Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('') +
      '\r\n',
  )
  try {
    return await head
  } finally {
    socket.destroy()
  }
}

describe('/ws upgrade', () => {
  test('a web session renewed during the upgrade sends its new cookies with the 101', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app)
    const head = await upgradeHead(http, '/ws?format=html', { origin: http, cookie: `${REFRESH_COOKIE}=${alice.refresh}` })
    expect(head).toStartWith('HTTP/1.1 101')
    const cookies = head.split('\r\n').filter((line) => line.toLowerCase().startsWith('set-cookie:'))
    expect(cookies.map((line) => line.slice('set-cookie: '.length).split('=')[0]).sort()).toEqual([ACCESS_COOKIE, REFRESH_COOKIE].sort())
    expect(cookies.join('\n')).not.toContain(alice.refresh)
  })

  /** The Set-Cookie lines of an upgrade's answer head. */
  const setCookies = (head: string) => head.split('\r\n').filter((line) => line.toLowerCase().startsWith('set-cookie:'))

  test('behind a trusted TLS proxy, a cookie upgrade from its https page renews the session with Secure cookies', async () => {
    await using t = await testApp({ TRUST_PROXY: '1' })
    const { http } = listen(t.app)
    const alice = await account(t.app)
    // As nginx passes it on: its upstream's address as Host, the client's host and scheme forwarded.
    const proxied = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'chat.example', origin: 'https://chat.example' }
    const head = await upgradeHead(http, '/ws?format=html', { ...proxied, cookie: `${REFRESH_COOKIE}=${alice.refresh}` })
    expect(head).toStartWith('HTTP/1.1 101')
    expect(setCookies(head)).toHaveLength(2)
    for (const line of setCookies(head)) expect(line).toMatch(/;\s*Secure/i)
  })

  test('the same upgrade is refused without TRUST_PROXY, or from the http origin of the same host', async () => {
    await using direct = await testApp()
    const alice = await account(direct.app)
    const cookie = `${REFRESH_COOKIE}=${alice.refresh}`
    const claims = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'chat.example', origin: 'https://chat.example', cookie }
    expect(await upgradeHead(listen(direct.app).http, '/ws?format=html', claims)).toStartWith('HTTP/1.1 403')
    await using proxied = await testApp({ TRUST_PROXY: '1' })
    const bob = await account(proxied.app)
    const fromHttp = { ...claims, origin: 'http://chat.example', cookie: `${REFRESH_COOKIE}=${bob.refresh}` }
    expect(await upgradeHead(listen(proxied.app).http, '/ws?format=html', fromHttp)).toStartWith('HTTP/1.1 403')
  })

  test("without TRUST_PROXY, a client's X-Forwarded-Proto: https does not make a renewal's cookies Secure", async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app)
    const head = await upgradeHead(http, '/ws?format=html', { origin: http, 'x-forwarded-proto': 'https', cookie: `${REFRESH_COOKIE}=${alice.refresh}` })
    expect(head).toStartWith('HTTP/1.1 101')
    expect(setCookies(head)).toHaveLength(2)
    for (const line of setCookies(head)) expect(line).not.toMatch(/Secure/i)
  })

  test('a plain GET is told how to connect: 426 in the error shape, with Upgrade: websocket', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const reply = await fetch(`${http}/ws`)
    expect(reply.status).toBe(426)
    expect(reply.headers.get('upgrade')).toBe('websocket')
    expect((await reply.json()).error.code).toBe('upgrade_required')
  })

  test('the Upgrade header is matched whatever its case, as RFC 6455 says: "WebSocket" upgrades too', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app)
    expect(await upgradeHead(http, `/ws?token=${alice.token}`, {}, 'WebSocket')).toStartWith('HTTP/1.1 101')
    const refused = await upgradeHead(http, '/ws', {}, 'WebSocket')
    expect(refused).toStartWith('HTTP/1.1 401')
  })

  test('an upgrade request that is not a WebSocket handshake gets 400 in the error shape', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app)
    const reply = await fetch(`${http}/ws?token=${alice.token}`, { headers: { upgrade: 'websocket', connection: 'Upgrade' } })
    expect(reply.status).toBe(400)
    expect((await reply.json()).error.code).toBe('invalid_upgrade')
  })

  test('a server fault while authenticating an upgrade is a logged 500, not a 401 that would send the client to sign in', async () => {
    const logs = captureLogs()
    await using t = await testApp({}, { logger: logs.logger })
    const { http } = listen(t.app)
    const alice = await account(t.app)
    await t.sql('DROP TABLE sessions')
    const reply = await attemptUpgrade(`${http}/ws?token=${alice.token}`)
    expect(reply).toEqual({ status: 500, body: { error: { code: 'internal_error', message: 'Internal server error' } } })
    expect(await logs.waitFor((l) => l.msg === 'websocket upgrade failed')).toMatchObject({ level: 'error' })
  })

  test('a socket whose open fails is closed with 1011, not left open without its subscriptions', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const failing = spyOn(conversations, 'positionsFor').mockImplementation(async () => {
      throw new Error('disk on fire')
    })
    try {
      const socket = new WebSocket(`${ws}?token=${alice.token}`)
      const frames: string[] = []
      socket.onmessage = (event) => frames.push(String(event.data))
      const closed = await new Promise<CloseEvent>((resolve) => (socket.onclose = resolve))
      expect(closed.code).toBe(1011)
      expect(frames).toEqual([])
    } finally {
      failing.mockRestore()
    }
    using again = await connect(ws, alice)
    expect(again.received[0]).toEqual({ type: 'ready', user_id: alice.id })
  })
})

describe('/ws memory', () => {
  test('an idle socket keeps one small record on the server: no closures of its own, nothing of its upgrade request', async () => {
    // Hundreds of sockets of one user, the simplest way to count what each adds.
    await using t = await testApp({ WS_MAX_SOCKETS_PER_USER: '1000' })
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const waiting = new Map<WebSocket, (socket: WebSocket) => void>()
    // One handler for every client, so that the clients add no functions of their own.
    function onReady(this: WebSocket) {
      waiting.get(this)?.(this)
      waiting.delete(this)
    }
    const open = () =>
      new Promise<WebSocket>((resolve) => {
        const socket = new WebSocket(`${ws}?token=${alice.token}`)
        socket.onmessage = onReady
        waiting.set(socket, resolve)
      })
    const sockets = [await open()] // the code paths of an upgrade, taken once before counting
    const objects = () => {
      Bun.gc(true)
      return heapStats().objectTypeCounts
    }
    // Two measurements of SOCKETS sockets each; whatever else the process allocates meanwhile (an
    // earlier test's timers, say) only adds objects, so the smaller of the two is what a socket adds.
    const SOCKETS = 300
    const counts = [objects()]
    for (const _ of [1, 2]) {
      for (let i = 0; i < SOCKETS; i++) sockets.push(await open())
      counts.push(objects())
    }
    const delta = (type: string, from: number) => ((counts[from + 1]![type] ?? 0) - (counts[from]![type] ?? 0)) / SOCKETS
    const added = (type: string) => Math.min(delta(type, 0), delta(type, 1))
    try {
      expect({ ServerWebSocket: added('ServerWebSocket'), WebSocket: added('WebSocket') }).toEqual({ ServerWebSocket: 1, WebSocket: 1 })
      // Its record is the one Object a socket adds (give or take what the JIT makes meanwhile), and
      // it has no closures: no Function, no scope kept for one.
      expect(added('Object')).toBeLessThan(1.5)
      for (const type of ['Function', 'JSLexicalEnvironment', 'Request', 'Headers', 'ProxyObject']) {
        expect({ [type]: added(type) < 0.25 ? 'none' : added(type) }).toEqual({ [type]: 'none' })
      }
    } finally {
      for (const socket of sockets) socket.close()
    }
  })
})

describe('/ws idle timeout', () => {
  test('a client that answers no ping and sends nothing is closed by the server after the idle timeout', async () => {
    await using t = await testApp({ WS_IDLE_TIMEOUT_SECONDS: '2' })
    const { http } = listen(t.app)
    const alice = await account(t.app)
    const { port } = new URL(http)
    // A raw TCP client: it completes the upgrade, then never reads a ping or answers with a pong.
    const { connect } = await import('node:net')
    const socket = connect(Number(port), '127.0.0.1')
    const upgraded = new Promise<string>((resolve) => socket.once('data', (data) => resolve(String(data))))
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    socket.write(
      `GET /ws?token=${alice.token} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    )
    expect(await upgraded).toStartWith('HTTP/1.1 101')
    const opened = performance.now()
    await closed
    expect(performance.now() - opened).toBeGreaterThanOrEqual(1000)
  }, 20_000)
})
