import { describe, expect, test } from 'bun:test'
import { listen, testApp, type TestApp } from '../support/app'
import { account, call, conversation, type Account } from '../support/http'
import { mulberry32 } from '../support/random'
import { type Frame, TestSocket } from '../support/ws'

/**
 * Unread counts that are always right (issue 18): the counts that go wrong in the chats people
 * use are a device's own, kept from what it was sent, after a reconnect or a read on another
 * device. Here two devices of one reader each keep their counts from nothing but the frames
 * they get (the change stream, resumed after each drop), while others send and delete at random,
 * the reader reads on a random device, and devices drop and come back. After every step, each
 * connected device's count, per conversation, equals the one the database gives, and the one
 * GET /conversations answers.
 */

type Conversation = { lastRead: number; messages: Map<number, { sender: string; deleted: boolean }> }

/** What one device knows, from the history it loaded once and the change frames after it. */
class Device {
  socket: TestSocket | null = null
  private applied = 0
  readonly conversations = new Map<string, Conversation>()
  readonly positions: Record<string, number> = {}

  constructor(
    private readonly me: Account,
    private readonly ws: string,
    private readonly seed: number,
  ) {}

  /** Loads like a client opening the app: the list (read positions, last_event_seq), then each conversation's history. */
  async load(t: TestApp, ids: string[]): Promise<void> {
    const list = (await call(t.app, 'GET', '/conversations', { token: this.me.token })).body.conversations as Array<{ id: string; last_read_seq: number; last_event_seq: number }>
    for (const id of ids) {
      const item = list.find((c) => c.id === id)!
      const history = (await call(t.app, 'GET', `/conversations/${id}/messages?limit=200`, { token: this.me.token })).body.messages as Array<{ seq: number; sender_id: string; deleted_at: string | null }>
      this.conversations.set(id, { lastRead: item.last_read_seq, messages: new Map(history.map((m) => [m.seq, { sender: m.sender_id, deleted: m.deleted_at !== null }])) })
      this.positions[id] = item.last_event_seq
    }
  }

  /** Connects and resumes from where it stood; its frames are applied from then on. */
  async connect(): Promise<void> {
    this.socket = await TestSocket.open(`${this.ws}?token=${this.me.token}&resume=1`)
    this.applied = this.socket.received.length
    this.socket.send({ type: 'resume', positions: this.positions })
    await this.socket.nextOfType('resumed')
  }

  async drop(): Promise<void> {
    await this.catchUp()
    const socket = this.socket!
    this.socket = null
    socket.close()
    await socket.closed
  }

  /** Applies every frame the server has sent it so far (ping, then pong: everything published before is delivered). */
  async catchUp(): Promise<void> {
    if (!this.socket) return
    await this.socket.drain()
    for (; this.applied < this.socket.received.length; this.applied++) this.apply(this.socket.received[this.applied]!)
  }

  private apply(frame: Frame): void {
    const conversation = this.conversations.get(frame.conversation_id)
    if (!conversation || typeof frame.event_seq !== 'number') return
    // In order, each once: what makes a count kept from frames right.
    expect({ seed: this.seed, conversation: frame.conversation_id, event_seq: frame.event_seq }).toEqual({
      seed: this.seed,
      conversation: frame.conversation_id,
      event_seq: this.positions[frame.conversation_id]! + 1,
    })
    this.positions[frame.conversation_id] = frame.event_seq
    if (frame.type === 'message' || frame.type === 'message_deleted') {
      conversation.messages.set(frame.message.seq, { sender: frame.message.sender_id, deleted: frame.message.deleted_at !== null })
    } else if (frame.type === 'read' && frame.user_id === this.me.id) {
      conversation.lastRead = frame.seq
    }
  }

  unread(conversationId: string): number {
    const { lastRead, messages } = this.conversations.get(conversationId)!
    let count = 0
    for (const [seq, m] of messages) if (seq > lastRead && m.sender !== this.me.id && !m.deleted) count++
    return count
  }

  /** The newest seq this device has seen in a conversation: what "read it all" means here. */
  newest(conversationId: string): number {
    return Math.max(0, ...this.conversations.get(conversationId)!.messages.keys())
  }
}

describe('unread counts: the property', () => {
  test("random sends, deletions and reads on either of the reader's two devices, which drop and resume at random: after every step each device's counts equal the database's", async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const carol = await account(t.app)
    const group = await conversation(t.app, bob, [alice, carol], 'Busy')
    const direct = await conversation(t.app, bob, [alice])
    const ids = [group.id, direct.id]
    const seed = Number(process.env.UNREAD_SEED ?? 20261130)
    const random = mulberry32(seed)
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!
    const sent: Array<{ id: string; sender: Account; conversationId: string }> = []

    const devices = [new Device(alice, ws, seed), new Device(alice, ws, seed)]
    for (const device of devices) {
      await device.load(t, ids)
      await device.connect()
    }

    const fromDatabase = async (conversationId: string) =>
      Number(
        (
          await t.sql<{ n: number }>(
            `SELECT count(*) AS n FROM messages AS m JOIN conversation_members AS cm ON cm.conversation_id = m.conversation_id AND cm.user_id = ?
             WHERE m.conversation_id = ? AND m.seq > cm.last_read_seq AND m.sender_id <> ? AND m.deleted_at IS NULL`,
            alice.id,
            conversationId,
            alice.id,
          )
        )[0]!.n,
      )
    let mostUnread = 0
    const check = async (step: number) => {
      const list = (await call(t.app, 'GET', '/conversations', { token: alice.token })).body.conversations as Array<{ id: string; unread_count: number }>
      for (const id of ids) {
        const expected = await fromDatabase(id)
        mostUnread = Math.max(mostUnread, expected)
        expect({ seed, step, id, api: list.find((c) => c.id === id)!.unread_count }).toEqual({ seed, step, id, api: expected })
        for (const [n, device] of devices.entries()) {
          if (!device.socket) continue
          await device.catchUp()
          expect({ seed, step, id, device: n, unread: device.unread(id) }).toEqual({ seed, step, id, device: n, unread: expected })
        }
      }
    }

    let reads = 0
    let resumes = 0
    for (let step = 0; step < 120; step++) {
      const roll = random()
      const conversationId = pick(ids)
      const device = pick(devices)
      if (roll < 0.1) {
        if (device.socket) await device.drop()
        else {
          await device.connect()
          resumes++
        }
      } else if (roll < 0.5 || sent.length === 0) {
        const sender = conversationId === direct.id ? pick([alice, bob, bob]) : pick([alice, bob, carol, carol])
        const reply = await call(t.app, 'POST', '/messages', { token: sender.token, body: { message_id: crypto.randomUUID(), conversation_id: conversationId, content: `step ${step}` } })
        expect(reply.status).toBe(201)
        sent.push({ id: reply.body.id, sender, conversationId })
      } else if (roll < 0.6) {
        const target = pick(sent)
        expect((await call(t.app, 'DELETE', `/messages/${target.id}`, { token: target.sender.token })).status).toBe(204)
      } else if (roll < 0.9) {
        // Reading on a device: everything it has seen, or (scrolled up) part of it; on a device
        // that is offline, the reader's position as that device last knew it, maybe behind.
        await device.catchUp()
        const newest = device.newest(conversationId)
        const seq = random() < 0.7 ? newest : Math.floor(random() * (newest + 1))
        expect((await call(t.app, 'POST', `/conversations/${conversationId}/read`, { token: alice.token, body: { seq } })).status).toBe(204)
        reads++
      } else {
        // Others read too: their receipts are in the stream, and change nothing of Alice's counts.
        const reader = conversationId === direct.id ? bob : pick([bob, carol])
        expect((await call(t.app, 'POST', `/conversations/${conversationId}/read`, { token: reader.token, body: { seq: 1_000_000 } })).status).toBe(204)
      }
      await check(step)
    }
    for (const device of devices) if (!device.socket) await device.connect()
    await check(120)
    // The run did what it is about: reads, drops and resumes, and counts that were not all zero.
    expect({ seed, reads: reads > 10, resumes: resumes > 2, unread: mostUnread > 2 }).toEqual({ seed, reads: true, resumes: true, unread: true })
    for (const device of devices) device.socket?.close()
  }, 120_000)
})
