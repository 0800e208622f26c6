/**
 * A cluster as it is deployed: two nodes on one database (the suite's engine) and one Redis, behind
 * a real load balancer (Debian's nginx running deploy/nginx.conf, round robin, terminating TLS),
 * clients talking only to it. Then Redis restarts, and a node is killed, while clients send.
 */
import { describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import type { Message } from '../../src/messages/model'
import { testDatabase } from '../support/app'
import { jsonClient, type ServerProcess, startNodes } from '../support/process'
import { startRedis } from '../support/redis'
import { SELF_SIGNED, skipProxyTests, startTlsProxy } from '../support/tls-proxy'
import { TestSocket } from '../support/ws'

type Person = { id: string; token: string }

/** Generous for a loaded two-core machine: how long a client waits for what it must get. */
const PATIENCE_MS = 30_000

/**
 * Two nodes on a fresh database and a Redis of their own, behind nginx; all of it stopped and
 * removed when `stack` is disposed.
 */
async function cluster(stack: AsyncDisposableStack) {
  const database = stack.use(await testDatabase())
  const redis = stack.use(await startRedis())
  const env = { DATABASE_URL: database.url, REDIS_URL: redis.url, JWT_SECRET: 'cluster-test-secret-of-at-least-32-chars', TRUST_PROXY: '1', RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_PER_HOUR: '0' }
  const nodes = stack.use(await startNodes(env))
  const proxy = stack.use(await startTlsProxy(nodes.map((n) => n.base)))
  const api = jsonClient(proxy.base, { tls: SELF_SIGNED })
  const wss = `${proxy.base.replace('https:', 'wss:')}/ws`
  return {
    redis,
    nodes,
    proxy,
    api,
    wss,
    /** `count` new accounts, signed up and logged in through the balancer. */
    async people(count: number): Promise<Person[]> {
      const people: Person[] = []
      for (let i = 0; i < count; i++) {
        const username = `user_${crypto.randomUUID().slice(0, 8)}`
        expect((await api('/auth/signup', undefined, { username, password: 'password123' })).status).toBe(201)
        const token = (await api('/auth/login', undefined, { username, password: 'password123' })).body.access_token as string
        people.push({ token, id: (await api('/auth/me', token)).body.id as string })
      }
      return people
    },
    /** Which node holds `person`'s socket (each person here has one at a time): the one that logged it. */
    nodeOf(person: Person): Promise<ServerProcess> {
      return Promise.any(nodes.map((node) => node.logs.waitFor((l) => l.msg === 'websocket connected' && l.user_id === person.id).then(() => node)))
    },
  }
}

/** A conversation's messages after seq `after`, read page by page through the balancer. */
async function historyAfter(api: ReturnType<typeof jsonClient>, person: Person, conversationId: string, after: number): Promise<Message[]> {
  const messages: Message[] = []
  for (let from = after; ; ) {
    const page = await api(`/conversations/${conversationId}/messages?after=${from}&limit=200`, person.token)
    expect(page.status).toBe(200)
    messages.push(...(page.body.messages as Message[]))
    if (page.body.messages.length < 200) return messages
    from = messages.at(-1)!.seq
  }
}

/** The message frames of a conversation a socket got, in the order it got them. */
function messagesOn(socket: TestSocket, conversationId: string): Message[] {
  return socket.received.filter((f) => f.type === 'message' && f.message.conversation_id === conversationId).map((f) => f.message as Message)
}

/**
 * A chat client as a real one runs, talking only to the load balancer: a socket, and after a
 * reconnect the messages it missed, read with after=<the last seq it saw>.
 */
class Client {
  readonly sockets: TestSocket[] = []
  /** Messages read with after= after reconnecting. */
  readonly caughtUp: Message[] = []

  constructor(
    readonly person: Person,
    private readonly wss: string,
    private readonly api: ReturnType<typeof jsonClient>,
    private readonly conversationId: string,
  ) {}

  get socket(): TestSocket {
    return this.sockets.at(-1)!
  }

  async connect(): Promise<void> {
    this.sockets.push(await TestSocket.open(`${this.wss}?token=${this.person.token}`, { tls: SELF_SIGNED } as never))
  }

  /** Message frames of its conversation one of its sockets got, in the order it got them. */
  live(socket: TestSocket): Message[] {
    return messagesOn(socket, this.conversationId)
  }

  /** The highest seq it has, live or read. */
  lastSeq(): number {
    return Math.max(0, ...this.sockets.flatMap((s) => this.live(s)).map((m) => m.seq), ...this.caughtUp.map((m) => m.seq))
  }

  /** After its socket closed: a new one (wherever the balancer puts it), then the history it missed, page by page. */
  async reconnectAndCatchUp(): Promise<void> {
    const after = this.lastSeq()
    await this.connect()
    this.caughtUp.push(...(await historyAfter(this.api, this.person, this.conversationId, after)))
  }

  /** Resolves once it has seq `last`, live or read, and everything sent to its socket before that. */
  async has(last: number): Promise<void> {
    if (this.lastSeq() < last) {
      await this.socket.next((f) => f.type === 'message' && f.message.conversation_id === this.conversationId && f.message.seq === last, `message ${last}`, PATIENCE_MS)
    }
    await this.socket.drain()
  }

  /** Everything it has, one entry per seq: each copy of a seq (live on a socket, or read) must be the same message. */
  everything(): Message[] {
    const bySeq = new Map<number, Message>()
    for (const message of [...this.sockets.flatMap((s) => this.live(s)), ...this.caughtUp]) {
      const known = bySeq.get(message.seq)
      if (known) expect(known.message_id).toBe(message.message_id)
      else bySeq.set(message.seq, message)
    }
    return [...bySeq.values()].sort((a, b) => a.seq - b.seq)
  }
}

function closeAll(clients: Client[]): void {
  for (const client of clients) for (const socket of client.sockets) socket.close()
}

/** A count that can be waited on: resolves once it reaches a value. */
function counter() {
  let value = 0
  const waiters: Array<{ at: number; resolve: () => void }> = []
  return {
    get value() {
      return value
    },
    add(): void {
      value++
      for (const waiter of waiters.filter((w) => w.at <= value)) waiters.splice(waiters.indexOf(waiter), 1), waiter.resolve()
    },
    reaches(at: number, what: string): Promise<void> {
      if (value >= at) return Promise.resolve()
      let timer: Timer | undefined
      return Promise.race([
        new Promise<void>((resolve) => waiters.push({ at, resolve })),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: ${value} of ${at} within ${PATIENCE_MS / 1000} s`)), PATIENCE_MS))),
      ]).finally(() => clearTimeout(timer))
    },
  }
}

/** `promise`, or an error naming `what` once PATIENCE_MS have passed without it. */
function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: Timer | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`waited ${PATIENCE_MS / 1000} s for ${what}`)), PATIENCE_MS))),
  ]).finally(() => clearTimeout(timer))
}

type Sent = { message: Message; attempts: number }

/**
 * POST /messages through the balancer until it is acknowledged (201), as a client does: a 502 (the
 * node it reached died with the request) or a dropped connection is retried with the same
 * message_id, which stores it once whatever the node did before dying. Anything else fails.
 */
async function sendUntilAcknowledged(base: string, person: Person, body: { message_id: string; conversation_id: string; content: string }): Promise<Sent> {
  const failures: string[] = []
  for (let attempt = 1; attempt <= 20; attempt++) {
    let reply: Response
    try {
      reply = await fetch(`${base}/messages`, {
        method: 'POST',
        tls: SELF_SIGNED,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${person.token}` },
        body: JSON.stringify(body),
      })
    } catch (error) {
      failures.push(String(error)) // the connection to the balancer dropped: not acknowledged, so sent again
      continue
    }
    const text = await reply.text()
    if (reply.status === 201) return { message: JSON.parse(text) as Message, attempts: attempt }
    if (reply.status !== 502) throw new Error(`POST /messages answered ${reply.status}: ${text}`)
    failures.push(`${reply.status} at ${new Date().toISOString()}`)
  }
  throw new Error(`message ${body.message_id} was not acknowledged in 20 attempts: ${failures.join(', ')}`)
}

/** How many messages one sender sends at most, should stop() never come. */
const MAX_PER_SENDER = 200

/**
 * Each of `senders` sends to the conversation, one message after the other, all senders at once,
 * until stop() (or MAX_PER_SENDER each). until() waits for a number of them to be acknowledged,
 * failing at once should a sender fail; stop() gives every message acknowledged.
 */
function stream(base: string, senders: Person[], conversationId: string) {
  const acknowledged = counter()
  let stopped = false
  const done = Promise.all(
    senders.map(async (sender, s) => {
      const sent: Sent[] = []
      for (let i = 0; !stopped && i < MAX_PER_SENDER; i++) {
        sent.push(await sendUntilAcknowledged(base, sender, { message_id: crypto.randomUUID(), conversation_id: conversationId, content: `sender ${s}, message ${i}` }))
        acknowledged.add()
      }
      return sent
    }),
  ).then((all) => all.flat())
  // A sender's failure surfaces where the test awaits until() or stop(); unhandled before that, it
  // would end the test without disposing of its processes.
  done.catch(() => {})
  return {
    get acknowledged() {
      return acknowledged.value
    },
    until(count: number, what: string): Promise<void> {
      const ended = done.then(() => {
        throw new Error(`${what}: the senders stopped at ${acknowledged.value}, before ${count}`)
      })
      return Promise.race([acknowledged.reaches(count, what), ended])
    },
    stop(): Promise<Sent[]> {
      stopped = true
      return done
    },
  }
}

/** A node's counter, read from its own /metrics (not through the balancer). */
async function metric(node: ServerProcess, name: string): Promise<number> {
  const text = await (await fetch(`${node.base}/metrics`)).text()
  return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1])
}

/**
 * Connections waiting in the accept queue of the listener on 127.0.0.1:`port`, from /proc/net/tcp
 * (a listener's rx_queue): requests a stopped process has not taken yet.
 */
function waitingToBeAccepted(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const [, address, , state, queues] = line.trim().split(/\s+/)
    if (address === local && state === '0A') return Number.parseInt(queues!.split(':')[1]!, 16)
  }
  return 0
}

describe.skipIf(skipProxyTests)('a cluster behind a load balancer', () => {
  test('whichever node serves each request and holds each socket, every socket gets every message once, in seq order', async () => {
    await using stack = new AsyncDisposableStack()
    const { nodes, api, wss, people } = await cluster(stack)
    const [alice, bob] = (await people(2)) as [Person, Person]
    const room = (await api('/conversations', alice.token, { member_ids: [bob.id] })).body.id as string

    // Two sockets each, through the balancer: they land on both nodes.
    const sockets: TestSocket[] = []
    for (const person of [alice, bob, alice, bob]) {
      sockets.push(stack.use(await TestSocket.open(`${wss}?token=${person.token}`, { tls: SELF_SIGNED } as never)))
    }
    const connectedOn = nodes.map((n) => n.logs.lines.filter((l) => l.msg === 'websocket connected').length)
    expect(connectedOn.every((count) => count > 0)).toBe(true)

    const SENDS = 20
    const replies = await Promise.all(
      Array.from({ length: SENDS }, (_, i) => api('/messages', (i % 2 ? bob : alice).token, { message_id: crypto.randomUUID(), conversation_id: room, content: `message ${i}` })),
    )
    expect(replies.every((r) => r.status === 201)).toBe(true)
    for (const socket of sockets) {
      await socket.next((f) => f.type === 'message' && f.message.seq === SENDS, `message ${SENDS}`)
      await socket.drain()
      expect(socket.received.filter((f) => f.type === 'message').map((f) => f.message.seq)).toEqual(Array.from({ length: SENDS }, (_, i) => i + 1))
    }
  }, 60_000)

  test('Redis restarted while clients send through both nodes: every socket ends with every acknowledged message exactly once, in seq order', async () => {
    await using stack = new AsyncDisposableStack()
    const { redis, nodes, proxy, api, wss, people, nodeOf } = await cluster(stack)
    const members = await people(4)
    const group = (title: string) => api('/conversations', members[0]!.token, { member_ids: members.slice(1).map((m) => m.id), title }).then((r) => r.body.id as string)
    // The stream goes on across the restart in one room; the other gets messages only while Redis
    // is down, so nothing after them can reveal the gap: each node must read them after the restart.
    const busy = await group('Busy')
    const quiet = await group('Quiet')
    const clients = members.map((person) => new Client(person, wss, api, busy))
    for (const client of clients) await client.connect()
    stack.defer(() => closeAll(clients))
    // The balancer takes nodes in turns: both hold sockets.
    const holders = await Promise.all(members.map(nodeOf))
    expect(new Set(holders).size).toBe(2)

    // Every member sends to the busy room, one message after the other, all at once; the balancer
    // spreads the POSTs over both nodes. Redis goes away once 8 are acknowledged, and comes back
    // once 8 more, and one from each member to the quiet room, have been stored without it (on
    // both nodes: their events to each other are lost); sending goes on for 8 more.
    const busyStream = stream(proxy.base, members, busy)
    await busyStream.until(8, 'acknowledged before the restart')
    await redis.stop()
    const whileDown = busyStream.until(busyStream.acknowledged + 8, 'acknowledged while Redis was down')
    whileDown.catch(() => {}) // awaited below; a failure meanwhile must not go unhandled
    const quietSent = await Promise.all(members.map((m, i) => sendUntilAcknowledged(proxy.base, m, { message_id: crypto.randomUUID(), conversation_id: quiet, content: `quiet ${i}` })))
    await whileDown
    await redis.start()
    await busyStream.until(busyStream.acknowledged + 8, 'acknowledged after the restart')
    const sent = await busyStream.stop()
    const total = sent.length
    expect(quietSent.every((s) => s.attempts === 1)).toBe(true)

    // Each node missed the other's events while Redis was down, and heard Redis come back.
    for (const node of nodes) {
      expect(await metric(node, 'pneumatic_bus_publish_failures_total')).toBeGreaterThan(0)
      await node.logs.waitFor((l) => l.msg === 'redis bus: subscribed again after an interruption')
    }
    const ids = (messages: Message[]) => messages.map((m) => m.message_id).sort()
    for (const client of clients) {
      await client.has(total)
      const inBusy = client.live(client.socket)
      expect(inBusy.map((m) => m.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1))
      expect(ids(inBusy)).toEqual(ids(sent.map((s) => s.message)))
      if (!messagesOn(client.socket, quiet).some((m) => m.seq === members.length)) {
        await client.socket.next((f) => f.type === 'message' && f.message.conversation_id === quiet && f.message.seq === members.length, 'the last quiet message', PATIENCE_MS)
      }
      await client.socket.drain()
      const inQuiet = messagesOn(client.socket, quiet)
      expect(inQuiet.map((m) => m.seq)).toEqual(Array.from({ length: members.length }, (_, i) => i + 1))
      expect(ids(inQuiet)).toEqual(ids(quietSent.map((s) => s.message)))
    }
  }, 120_000)

  test('kill -9 of a node during sends: its clients reconnect through the balancer, catch up with after=, and have every acknowledged message once', async () => {
    await using stack = new AsyncDisposableStack()
    const { nodes, proxy, api, wss, people, nodeOf } = await cluster(stack)
    const members = await people(4)
    const room = (await api('/conversations', members[0]!.token, { member_ids: members.slice(1).map((m) => m.id), title: 'Kill' })).body.id as string
    const clients = members.map((person) => new Client(person, wss, api, room))
    for (const client of clients) await client.connect()
    stack.defer(() => closeAll(clients))
    const [doomed, survivor] = [nodes[0]!, nodes[1]!]
    const holders = await Promise.all(members.map(nodeOf))
    const onDoomed = clients.filter((_, i) => holders[i] === doomed)
    const onSurvivor = clients.filter((_, i) => holders[i] === survivor)
    expect(onDoomed.length).toBeGreaterThan(0)
    expect(onSurvivor.length).toBeGreaterThan(0)

    const sending = stream(proxy.base, members, room)
    await sending.until(8, 'acknowledged before the kill')
    // The node hangs (SIGSTOP) until a POST the balancer sent it waits unanswered (every other
    // request goes to it), then is killed: that request dies with it, answered 502 by nginx, and
    // its sender must send it again.
    doomed.process.kill('SIGSTOP')
    // Two more POSTs: one of them at least is the stopped node's turn (the others' may all be
    // waiting, on the survivor, for a lock the stopped node holds).
    const probes = Promise.all([0, 1].map((i) => sendUntilAcknowledged(proxy.base, members[i]!, { message_id: crypto.randomUUID(), conversation_id: room, content: `probe ${i}` })))
    probes.catch(() => {}) // awaited below; a failure meanwhile must not go unhandled
    const port = Number(new URL(doomed.base).port)
    for (let polls = 0; waitingToBeAccepted(port) === 0; polls++) {
      if (polls === 1500) throw new Error('no request reached the stopped node within 30 s')
      await Bun.sleep(20) // polling a condition, bounded: 1,500 × 20 ms
    }
    doomed.process.kill('SIGKILL')
    await doomed.process.exited

    // The dead node's sockets close; their clients reconnect through the balancer, which sends
    // them to the survivor, and read what they missed. The survivor's sockets stay open throughout.
    await Promise.all(
      onDoomed.map(async (client) => {
        await within(client.socket.closed, "a socket on the killed node to close")
        await client.reconnectAndCatchUp()
      }),
    )
    await sending.until(sending.acknowledged + 8, 'acknowledged after the kill')
    const sent = [...(await sending.stop()), ...(await probes)]
    const total = sent.length
    expect(sent.some((s) => s.attempts > 1)).toBe(true)

    // Every message acknowledged is stored once, the ones sent again included.
    const history = await historyAfter(api, members[0]!, room, 0)
    const acknowledgedIds = sent.map((s) => s.message.message_id).sort()
    expect(history.map((m) => m.message_id).sort()).toEqual(acknowledgedIds)
    expect(history.map((m) => m.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1))

    for (const client of clients) {
      await client.has(total)
      // No socket got a message twice, or out of order.
      for (const socket of client.sockets) {
        const seqs = client.live(socket).map((m) => m.seq)
        expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => a - b))
      }
      // Live frames and catch-up together: every acknowledged message, each once.
      const everything = client.everything()
      expect(everything.map((m) => m.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1))
      expect(everything.map((m) => m.message_id).sort()).toEqual(acknowledgedIds)
    }
    for (const client of onSurvivor) {
      expect(client.sockets).toHaveLength(1)
      expect(client.socket.ws.readyState).toBe(WebSocket.OPEN)
    }
    for (const client of onDoomed) expect(client.sockets).toHaveLength(2)
  }, 120_000)
})
