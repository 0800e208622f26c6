/**
 * Typing and presence across two server processes on one database and one Redis (issue 18): a
 * user with sockets on both nodes is online until both close, watchers on either node are told
 * each change once, a node killed outright takes its users offline after
 * PRESENCE_NODE_TIMEOUT_SECONDS, and typing reaches the other node but not the typist's devices there.
 */
import { expect, test } from 'bun:test'
import { testDatabase } from '../support/app'
import { jsonClient, type ServerProcess, startNodes } from '../support/process'
import { startRedis } from '../support/redis'
import { type Frame, TestSocket } from '../support/ws'

const SECRET = 'two-nodes-presence-secret-of-32-characters'
const GRACE_SECONDS = 1
const NODE_TIMEOUT_SECONDS = 3
type Client = ReturnType<typeof jsonClient>
type Person = { id: string; token: string; name: string }

async function account(node: Client, name: string): Promise<Person> {
  expect((await node('/auth/signup', undefined, { username: name, password: 'password123' })).status).toBe(201)
  const login = await node('/auth/login', undefined, { username: name, password: 'password123' })
  const me = await node('/auth/me', login.body.access_token)
  return { id: me.body.id as string, token: login.body.access_token as string, name }
}

async function twoNodes() {
  const database = await testDatabase()
  const redis = await startRedis()
  const nodes = await startNodes({
    DATABASE_URL: database.url,
    REDIS_URL: redis.url,
    JWT_SECRET: SECRET,
    RATE_LIMIT_PER_MINUTE: '0',
    RATE_LIMIT_PER_HOUR: '0',
    PRESENCE_GRACE_SECONDS: String(GRACE_SECONDS),
    PRESENCE_NODE_TIMEOUT_SECONDS: String(NODE_TIMEOUT_SECONDS),
  })
  const [a, b] = nodes.map((n: ServerProcess) => jsonClient(n.base)) as [Client, Client]
  const ws = nodes.map((n) => `${n.base.replace('http', 'ws')}/ws`) as [string, string]
  return {
    nodes,
    redis,
    a,
    b,
    ws,
    async [Symbol.asyncDispose]() {
      await nodes[Symbol.asyncDispose]()
      await redis[Symbol.asyncDispose]()
      await database[Symbol.asyncDispose]()
    },
  }
}

const connect = (ws: string, who: Person) => TestSocket.open(`${ws}?token=${who.token}`, { presence: true })
const presenceOf = (who: Person, online: boolean) => ({ type: 'presence', user_id: who.id, online })
const nextPresence = (socket: TestSocket, who: Person) => socket.next((f) => f.type === 'presence' && f.user_id === who.id, `presence of ${who.name}`, 15_000)
const about = (who: Person) => (f: Frame) => f.type === 'presence' && f.user_id === who.id

async function listed(node: Client, viewer: Person, who: Person) {
  const reply = await node('/users', viewer.token)
  expect(reply.status).toBe(200)
  return reply.body.users.find((u: { id: string }) => u.id === who.id) as { online: boolean; last_seen_at: string | null }
}

test('someone with sockets on both nodes is online until both close, and watchers on either node are told each change once', async () => {
  await using cluster = await twoNodes()
  const { nodes, a, b, ws } = cluster
  const [alice, bob, carol] = [await account(a, 'alice_both'), await account(a, 'bob_both'), await account(b, 'carol_both')]
  // Bob shares two conversations with Alice; Carol, one with Bob, is the witness below.
  expect((await a('/conversations', alice.token, { member_ids: [bob.id] })).status).toBe(201)
  expect((await a('/conversations', alice.token, { member_ids: [bob.id], title: 'Pair', is_group: true })).status).toBe(201)
  expect((await b('/conversations', carol.token, { member_ids: [bob.id] })).status).toBe(201)
  using bobOnA = await connect(ws[0], bob)
  using bobOnB = await connect(ws[1], bob)

  const aliceOnA = await connect(ws[0], alice)
  for (const socket of [bobOnA, bobOnB]) expect(await nextPresence(socket, alice)).toEqual(presenceOf(alice, true))
  for (const node of [a, b]) expect(await listed(node, bob, alice)).toMatchObject({ online: true, last_seen_at: null })
  // Her socket on the other node changes nothing.
  const aliceOnB = await connect(ws[1], alice)

  // She closes the one on A, then Carol her only one: once Carol is offline (a grace after she
  // left), Alice would be too, had her socket on B not counted.
  aliceOnA.close()
  await nodes[0]!.logs.waitFor((l) => l.msg === 'websocket disconnected' && l.user_id === alice.id)
  const carolSocket = await connect(ws[1], carol)
  for (const socket of [bobOnA, bobOnB]) expect(await nextPresence(socket, carol)).toEqual(presenceOf(carol, true))
  carolSocket.close()
  for (const socket of [bobOnA, bobOnB]) expect(await nextPresence(socket, carol)).toEqual(presenceOf(carol, false))
  for (const node of [a, b]) expect(await listed(node, bob, alice)).toMatchObject({ online: true })

  const before = Date.now()
  aliceOnB.close()
  for (const socket of [bobOnA, bobOnB]) expect(await nextPresence(socket, alice)).toEqual(presenceOf(alice, false))
  expect(Date.now() - before).toBeGreaterThanOrEqual(GRACE_SECONDS * 1000)
  for (const socket of [bobOnA, bobOnB]) {
    await socket.drain()
    expect(socket.received.filter(about(alice))).toEqual([presenceOf(alice, true), presenceOf(alice, false)])
  }
  for (const node of [a, b]) {
    const seen = await listed(node, bob, alice)
    expect(seen.online).toBe(false)
    expect(Date.parse(seen.last_seen_at!)).toBeGreaterThanOrEqual(before)
  }
}, 60_000)

test(`a node killed outright takes its users offline once it has been silent for PRESENCE_NODE_TIMEOUT_SECONDS (${NODE_TIMEOUT_SECONDS} s), told once on the other node`, async () => {
  await using cluster = await twoNodes()
  const { nodes, a, ws } = cluster
  const [alice, bob] = [await account(a, 'alice_killed'), await account(a, 'bob_killed')]
  expect((await a('/conversations', alice.token, { member_ids: [bob.id] })).status).toBe(201)
  using bobOnA = await connect(ws[0], bob)
  using _aliceOnB = await connect(ws[1], alice)
  expect(await nextPresence(bobOnA, alice)).toEqual(presenceOf(alice, true))

  nodes[1]!.process.kill('SIGKILL')
  await nodes[1]!.process.exited
  const killedAt = Date.now()
  expect(await nextPresence(bobOnA, alice)).toEqual(presenceOf(alice, false))
  // Taken for gone only once it had been silent for the timeout (it beat last at most one sweep before it died).
  expect(Date.now() - killedAt).toBeGreaterThanOrEqual(NODE_TIMEOUT_SECONDS * 1000 - 1000)
  await bobOnA.drain()
  expect(bobOnA.received.filter(about(alice))).toEqual([presenceOf(alice, true), presenceOf(alice, false)])
  // Last seen at the dead node's last beat.
  const seen = await listed(a, bob, alice)
  expect(seen.online).toBe(false)
  expect(Date.parse(seen.last_seen_at!)).toBeLessThanOrEqual(killedAt)
  expect(Date.parse(seen.last_seen_at!)).toBeGreaterThan(killedAt - NODE_TIMEOUT_SECONDS * 1000)
}, 60_000)

test("typing on one node reaches the other members' sockets on the other, not the typist's own there, at most one every 2 s whichever node it comes through", async () => {
  await using cluster = await twoNodes()
  const { a, ws } = cluster
  const [alice, bob] = [await account(a, 'alice_typing'), await account(a, 'bob_typing')]
  const direct = (await a('/conversations', alice.token, { member_ids: [bob.id] })).body.id as string
  using aliceOnA = await TestSocket.open(`${ws[0]}?token=${alice.token}`)
  using aliceOnB = await TestSocket.open(`${ws[1]}?token=${alice.token}`)
  using bobOnB = await TestSocket.open(`${ws[1]}?token=${bob.token}`)

  aliceOnA.send({ type: 'typing', conversation_id: direct })
  expect(await bobOnB.nextOfType('typing')).toEqual({ type: 'typing', conversation_id: direct, user_id: alice.id })
  // Again at once, through the other node: the window is counted in Redis, for both.
  aliceOnB.send({ type: 'typing', conversation_id: direct })
  await aliceOnB.drain()
  // The one passed on was published before A answered; B's own drop, before B answered.
  await aliceOnA.drain()
  expect(await bobOnB.drain()).toEqual([])
  expect(aliceOnB.received.filter((f) => f.type === 'typing')).toEqual([])
}, 60_000)

test('Redis restarting without its data: each node says again who it holds, and they are online again', async () => {
  await using cluster = await twoNodes()
  const { nodes, a, b, ws, redis } = cluster
  const [alice, bob] = [await account(a, 'alice_restart'), await account(a, 'bob_restart')]
  expect((await a('/conversations', alice.token, { member_ids: [bob.id] })).status).toBe(201)
  using bobOnA = await connect(ws[0], bob)
  using _aliceOnB = await connect(ws[1], alice)
  // Her arrival is recorded (and announced) just after her socket is ready; Bob's was long before.
  expect(await nextPresence(bobOnA, alice)).toEqual(presenceOf(alice, true))
  for (const [node, viewer, who] of [[a, bob, alice], [b, alice, bob]] as const) expect(await listed(node, viewer, who)).toMatchObject({ online: true })

  await redis.restart()
  // Each node finds at its next sweep that Redis has forgotten it, and says again who it holds.
  for (const node of nodes) await node.logs.waitFor((l) => l.msg === 'presence: said again who is here' && l.forgotten === true && l.users === 1)
  for (const node of [a, b]) {
    expect(await listed(node, bob, alice)).toMatchObject({ online: true })
    expect(await listed(node, alice, bob)).toMatchObject({ online: true })
  }
}, 60_000)
