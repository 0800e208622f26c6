/**
 * Two server processes on one database (the suite's engine: a shared SQLite file, or one
 * PostgreSQL database with PNEUMATIC_TEST_DATABASE=postgres) and, for most tests, one
 * redis-server of the test's own: what is posted or ended on one node reaches the other.
 */
import { expect, test } from 'bun:test'
import { join } from 'node:path'
import { ACCESS_COOKIE, REFRESH_COOKIE } from '../../src/auth/credentials'
import { SESSION_MEMORY_MS } from '../../src/auth/service'
import { testDatabase } from '../support/app'
import { jsonClient, type ServerProcess, startNodes } from '../support/process'
import { startRedis } from '../support/redis'
import { TestSocket } from '../support/ws'

const SECRET = 'two-nodes-secret-of-at-least-32-characters'

const client = (server: ServerProcess) => jsonClient(server.base)

async function account(node: ReturnType<typeof client>, username: string) {
  expect((await node('/auth/signup', undefined, { username, password: 'password123' })).status).toBe(201)
  const login = await node('/auth/login', undefined, { username, password: 'password123' })
  const me = await node('/auth/me', login.body.access_token)
  return { id: me.body.id as string, token: login.body.access_token as string }
}

test('a message POSTed to one node reaches a WebSocket on the other node, both ways', async () => {
  await using database = await testDatabase()
  await using redis = await startRedis()
  const env = { DATABASE_URL: database.url, REDIS_URL: redis.url, JWT_SECRET: SECRET, RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_PER_HOUR: '0' }
  await using nodes = await startNodes(env)
  const [a, b] = nodes.map(client) as [ReturnType<typeof client>, ReturnType<typeof client>]
  expect(nodes.map((n) => n.logs.lines.find((l) => l.msg === 'pneumatic listening')?.bus)).toEqual([redis.url, redis.url])
  const alice = await account(a, 'alice_two_nodes')
  const bob = await account(b, 'bob_two_nodes')
  const room = (await a('/conversations', alice.token, { member_ids: [bob.id] })).body.id as string

  using aliceOnA = await TestSocket.open(`${nodes[0]!.base.replace('http', 'ws')}/ws?token=${alice.token}`)
  using bobOnB = await TestSocket.open(`${nodes[1]!.base.replace('http', 'ws')}/ws?token=${bob.token}`)

  const fromB = await b('/messages', bob.token, { message_id: crypto.randomUUID(), conversation_id: room, content: 'posted on B' })
  expect(fromB.status).toBe(201)
  expect(await aliceOnA.nextMessage((m) => m.id === fromB.body.id)).toMatchObject({ content: 'posted on B', seq: 1 })

  const fromA = await a('/messages', alice.token, { message_id: crypto.randomUUID(), conversation_id: room, content: 'posted on A' })
  expect(fromA.status).toBe(201)
  expect(await bobOnB.nextMessage((m) => m.id === fromA.body.id)).toMatchObject({ content: 'posted on A', seq: 2 })

  // Each socket got each message once: its own node's copy, never a second one from Redis.
  for (const socket of [aliceOnA, bobOnB]) {
    await socket.drain()
    expect(socket.received.filter((f) => f.type === 'message').map((f) => f.message.content)).toEqual(['posted on B', 'posted on A'])
  }
}, 60_000)

test("the web UI's page on one node gets the rendered push of a message POSTed to the other node", async () => {
  await using database = await testDatabase()
  await using redis = await startRedis()
  const env = { DATABASE_URL: database.url, REDIS_URL: redis.url, JWT_SECRET: SECRET, RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_PER_HOUR: '0' }
  await using nodes = await startNodes(env)
  const [nodeA, nodeB] = [nodes[0]!, nodes[1]!]
  const a = client(nodeA)
  const alice = await account(a, 'alice_ui_push')

  // Bob signs up in his browser on node A: the session cookies it sets are good on every node.
  const signup = await fetch(`${nodeA.base}/ui/signup`, {
    method: 'POST',
    body: new URLSearchParams({ username: 'bob_ui_push', password: 'password123', full_name: 'Bob Builder' }),
    headers: { origin: nodeA.base, 'sec-fetch-site': 'same-origin' },
    redirect: 'manual',
  })
  expect(signup.status).toBe(303)
  const cookies = signup.headers.getSetCookie().map((line) => line.split(';')[0]!)
  expect(cookies.map((c) => c.slice(0, c.indexOf('='))).sort()).toEqual([ACCESS_COOKIE, REFRESH_COOKIE].sort())
  const bobToken = cookies.find((c) => c.startsWith(`${ACCESS_COOKIE}=`))!.slice(ACCESS_COOKIE.length + 1)
  const bob = { id: (await a('/auth/me', bobToken)).body.id as string }

  // His page's live socket is on node B, opened as the browser opens it: the cookies, our Origin.
  using bobPage = await TestSocket.open(`${nodeB.base.replace('http', 'ws')}/ws?format=html`, { headers: { origin: nodeB.base, cookie: cookies.join('; ') } })
  expect(bobPage.received[0]).toEqual({ type: 'ready', user_id: bob.id })

  const room = (await a('/conversations', alice.token, { member_ids: [bob.id] })).body.id as string
  const sent = await a('/messages', alice.token, { message_id: crypto.randomUUID(), conversation_id: room, content: 'rendered <b>across</b> nodes' })
  expect(sent.status).toBe(201)
  const push = (await bobPage.nextOfType('html')).html as string
  expect(push).toContain(`<li id="msg-${sent.body.id}" class="message" data-seq="1" data-sender="${alice.id}" data-version="1" tabindex="0">`)
  expect(push).toContain('<p class="content">rendered &lt;b&gt;across&lt;/b&gt; nodes</p>')
  expect(push).toContain('<span class="conversation-name">alice_ui_push</span>') // rendered for Bob: named after Alice
  expect(await bobPage.drain()).toEqual([])
}, 60_000)

test('a node whose REDIS_URL cannot be reached refuses to start, with one line naming REDIS_URL', async () => {
  await using database = await testDatabase()
  await using redis = await startRedis()
  await redis.stop()
  const child = Bun.spawn([process.execPath, join(import.meta.dir, '..', '..', 'src', 'main.ts')], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATABASE_URL: database.url, REDIS_URL: redis.url, JWT_SECRET: SECRET },
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: 'pipe',
  })
  const stderr = await new Response(child.stderr).text()
  expect(await child.exited).toBe(1)
  const lines = stderr.trim().split('\n')
  expect(lines).toHaveLength(1)
  expect(lines[0]).toStartWith(`Invalid configuration: REDIS_URL cannot be reached at ${redis.url}`)
}, 30_000)

test('a logout on one node is refused at once on the other, and closes that session’s socket there', async () => {
  await using database = await testDatabase()
  await using redis = await startRedis()
  const env = { DATABASE_URL: database.url, REDIS_URL: redis.url, JWT_SECRET: SECRET, RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_PER_HOUR: '0' }
  await using nodes = await startNodes(env)
  const [a, b] = nodes.map(client) as [ReturnType<typeof client>, ReturnType<typeof client>]
  const alice = await account(a, 'alice_logout')
  expect((await b('/auth/me', alice.token)).status).toBe(200) // node B now remembers the session open
  using aliceOnB = await TestSocket.open(`${nodes[1]!.base.replace('http', 'ws')}/ws?token=${alice.token}`)

  expect((await a('/auth/logout', alice.token, {})).status).toBe(204)
  expect((await aliceOnB.closed).code).toBe(1008)
  // The event that closed the socket made node B forget the session: the next request is refused.
  expect(await b('/auth/me', alice.token)).toMatchObject({ status: 401, body: { error: { code: 'session_ended' } } })
}, 60_000)

test('without Redis, a node still stops believing a session ended on another node within a few seconds', async () => {
  await using database = await testDatabase()
  const env = { DATABASE_URL: database.url, JWT_SECRET: SECRET, RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_PER_HOUR: '0' }
  await using nodes = await startNodes(env)
  const [a, b] = nodes.map(client) as [ReturnType<typeof client>, ReturnType<typeof client>]
  const alice = await account(a, 'alice_no_bus')
  expect((await b('/auth/me', alice.token)).status).toBe(200)
  expect((await a('/auth/logout', alice.token, {})).status).toBe(204)
  const loggedOut = performance.now()
  // Node B heard nothing; its memory of the session runs out by itself (SESSION_MEMORY_MS).
  let status = 200
  for (let i = 0; i < 200 && status === 200; i++) {
    status = (await b('/auth/me', alice.token)).status
    if (status === 200) await Bun.sleep(50) // polling the condition, bounded: 200 × 50 ms
  }
  expect(status).toBe(401)
  expect(performance.now() - loggedOut).toBeLessThan(SESSION_MEMORY_MS + 2_000)
}, 60_000)

/**
 * Two nodes on a fresh database and a Redis of their own, Alice and Bob in a 1-on-1, Bob's socket
 * on node B; all of it closed, stopped and removed on dispose.
 */
async function twoNodesAndASocket() {
  const database = await testDatabase()
  const redis = await startRedis()
  const env = { DATABASE_URL: database.url, REDIS_URL: redis.url, JWT_SECRET: SECRET, RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_PER_HOUR: '0' }
  const nodes = await startNodes(env)
  const [a, b] = nodes.map(client) as [ReturnType<typeof client>, ReturnType<typeof client>]
  const alice = await account(a, `alice_${crypto.randomUUID().slice(0, 8)}`)
  const bob = await account(b, `bob_${crypto.randomUUID().slice(0, 8)}`)
  const room = (await a('/conversations', alice.token, { member_ids: [bob.id] })).body.id as string
  const bobOnB = await TestSocket.open(`${nodes[1]!.base.replace('http', 'ws')}/ws?token=${bob.token}`)
  const send = (node: typeof a, who: { token: string }, content: string) => node('/messages', who.token, { message_id: crypto.randomUUID(), conversation_id: room, content })
  return {
    redis,
    nodes,
    a,
    b,
    alice,
    bob,
    bobOnB,
    send,
    async [Symbol.asyncDispose]() {
      bobOnB.close()
      await nodes[Symbol.asyncDispose]()
      await redis[Symbol.asyncDispose]()
      await database[Symbol.asyncDispose]()
    },
  }
}

/** The seqs of the message frames a socket got, in the order it got them, once `count` have come. */
async function seqsOnceReceived(socket: TestSocket, count: number): Promise<number[]> {
  await socket.next((f) => f.type === 'message' && f.message.seq === count, `message ${count}`)
  await socket.drain()
  return socket.received.filter((f) => f.type === 'message').map((f) => f.message.seq)
}

test('messages sent on both nodes at once reach a socket in seq order, each once', async () => {
  await using cluster = await twoNodesAndASocket()
  const { a, b, alice, bob, bobOnB, send } = cluster
  // Bob's own messages reach his node's sockets at once; Alice's come a moment later over Redis,
  // sometimes after a later one of Bob's: node B must fill the gap from the database, in order.
  const sends: Promise<{ status: number }>[] = []
  for (let i = 0; i < 30; i++) sends.push(send(i % 2 === 0 ? a : b, i % 2 === 0 ? alice : bob, `message ${i}`))
  expect((await Promise.all(sends)).every((r) => r.status === 201)).toBe(true)
  expect(await seqsOnceReceived(bobOnB, 30)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1))
}, 60_000)

test('after the bus connection is killed mid-stream, a node reads what it missed from the database: nothing lost, nothing twice', async () => {
  await using cluster = await twoNodesAndASocket()
  const { redis, nodes, a, alice, bobOnB, send } = cluster
  expect((await send(a, alice, 'before')).status).toBe(201)
  await bobOnB.nextMessage((m) => m.seq === 1)
  // Every subscriber connection is cut (both nodes'): what node A publishes until node B has
  // subscribed again is lost on the bus.
  await redis.cli('CLIENT', 'KILL', 'TYPE', 'pubsub')
  for (let i = 0; i < 10; i++) expect((await send(a, alice, `during ${i}`)).status).toBe(201)
  expect(await seqsOnceReceived(bobOnB, 11)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1))
  expect(nodes[1]!.logs.lines.some((l) => l.msg === 'redis bus: subscribed again after an interruption')).toBe(true)
}, 60_000)

test('rate limits count across nodes through Redis, and hold per node while Redis is down', async () => {
  await using database = await testDatabase()
  await using redis = await startRedis()
  const env = { DATABASE_URL: database.url, REDIS_URL: redis.url, JWT_SECRET: SECRET, RATE_LIMIT_PER_MINUTE: '8', RATE_LIMIT_PER_HOUR: '0', LOGIN_FAILURE_LIMIT_PER_USERNAME: '3' }
  await using nodes = await startNodes(env)
  const [a, b] = nodes.map(client) as [ReturnType<typeof client>, ReturnType<typeof client>]
  const alice = await account(a, 'alice_limits') // its /auth/me is the first of Alice's 8

  // Ten requests, alternately on each node: one count for both, so 7 pass and 3 are refused
  // (counted per node, all ten would pass).
  const statuses: number[] = []
  for (let i = 0; i < 10; i++) statuses.push((await (i % 2 === 0 ? a : b)('/users', alice.token)).status)
  expect(statuses.filter((s) => s === 200)).toHaveLength(7)
  expect(statuses.slice(7)).toEqual([429, 429, 429])

  // Failed logins too: two on A and one on B spend the username's three, so the right password is refused on B.
  const login = (node: typeof a, password: string) => node('/auth/login', undefined, { username: 'bob_limits', password })
  expect((await b('/auth/signup', undefined, { username: 'bob_limits', password: 'password123' })).status).toBe(201)
  for (const node of [a, a, b]) expect((await login(node, 'wrong password')).status).toBe(401)
  expect((await login(b, 'password123')).status).toBe(429)

  // Redis gone: each node counts in its own memory instead; requests are limited, never failed.
  await redis.stop()
  const carol = await account(a, 'carol_limits')
  const perNode: number[] = []
  for (let i = 0; i < 10; i++) perNode.push((await a('/users', carol.token)).status)
  expect(perNode.filter((s) => s === 200)).toHaveLength(7) // Carol's /auth/me was the first of 8, on this node
  expect(perNode.slice(7)).toEqual([429, 429, 429])
}, 60_000)

test('each node counts the messages it stored, so their sum over the nodes is right', async () => {
  await using cluster = await twoNodesAndASocket()
  const { nodes, a, b, alice, bob, bobOnB, send } = cluster
  for (let i = 0; i < 3; i++) expect((await send(a, alice, `on A ${i}`)).status).toBe(201)
  for (let i = 0; i < 2; i++) expect((await send(b, bob, `on B ${i}`)).status).toBe(201)
  await seqsOnceReceived(bobOnB, 5) // every event has crossed the bus
  const stored = async (node: ServerProcess) => {
    const text = await (await fetch(`${node.base}/metrics`)).text()
    return Number(/^pneumatic_messages_sent_total (\d+)$/m.exec(text)?.[1])
  }
  expect([await stored(nodes[0]!), await stored(nodes[1]!)]).toEqual([3, 2])
}, 60_000)

test('a message stored while Redis is down is still acknowledged, and the event other nodes missed is counted in /metrics', async () => {
  await using cluster = await twoNodesAndASocket()
  const { redis, nodes, a, alice, send } = cluster
  await redis.stop()
  expect((await send(a, alice, 'while Redis is down')).status).toBe(201)
  await nodes[0]!.logs.waitFor((l) => l.msg === 'redis bus: an event could not be published; other nodes are told to read it once Redis takes a publish again')
  const metrics = await (await fetch(`${nodes[0]!.base}/metrics`)).text()
  expect(/^pneumatic_bus_publish_failures_total (\d+)$/m.exec(metrics)?.[1]).toBe('1')
}, 60_000)
