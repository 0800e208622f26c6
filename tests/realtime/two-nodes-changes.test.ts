/**
 * The change stream across two nodes (issue 17): edits, reactions and membership changes made on
 * one node reach sockets on the other in event_seq order; a removed member stops receiving and is
 * refused at once on every node; a socket resumes on either node.
 */
import { expect, test } from 'bun:test'
import { testDatabase } from '../support/app'
import { jsonClient, type ServerProcess, startNodes } from '../support/process'
import { startRedis } from '../support/redis'
import { TestSocket } from '../support/ws'

const SECRET = 'two-nodes-changes-secret-of-32-characters'
type Client = ReturnType<typeof jsonClient>

async function account(node: Client, username: string) {
  expect((await node('/auth/signup', undefined, { username, password: 'password123' })).status).toBe(201)
  const login = await node('/auth/login', undefined, { username, password: 'password123' })
  const me = await node('/auth/me', login.body.access_token)
  return { id: me.body.id as string, token: login.body.access_token as string }
}

async function twoNodes() {
  const database = await testDatabase()
  const redis = await startRedis()
  const nodes = await startNodes({ DATABASE_URL: database.url, REDIS_URL: redis.url, JWT_SECRET: SECRET, RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_PER_HOUR: '0' })
  const [a, b] = nodes.map((n: ServerProcess) => jsonClient(n.base)) as [Client, Client]
  const ws = nodes.map((n) => `${n.base.replace('http', 'ws')}/ws`) as [string, string]
  return {
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

test('edits, reactions and deletions made on one node reach a socket on the other, in event_seq order', async () => {
  await using cluster = await twoNodes()
  const { a, b, ws } = cluster
  const alice = await account(a, 'alice_changes')
  const bob = await account(b, 'bob_changes')
  const room = (await a('/conversations', alice.token, { member_ids: [bob.id] })).body.id as string
  using bobOnB = await TestSocket.open(`${ws[1]}?token=${bob.token}`)
  const sent = (await a('/messages', alice.token, { message_id: crypto.randomUUID(), conversation_id: room, content: 'first' })).body
  expect((await a(`/messages/${sent.id}`, alice.token, { content: 'first, edited' }, 'PATCH')).status).toBe(200)
  expect((await b(`/messages/${sent.id}/reactions/${encodeURIComponent('🎉')}`, bob.token, undefined, 'PUT')).status).toBe(204)
  expect((await a(`/messages/${sent.id}`, alice.token, undefined, 'DELETE')).status).toBe(204)
  const frames = []
  for (let i = 0; i < 4; i++) frames.push(await bobOnB.next((f) => typeof f.event_seq === 'number', 'a change'))
  expect(frames.map((f) => [f.event_seq, f.type])).toEqual([
    [1, 'message'],
    [2, 'message_edited'],
    [3, 'reaction'],
    [4, 'message_deleted'],
  ])
  expect(frames[3]!.message).toMatchObject({ id: sent.id, content: '', reactions: [] })
}, 60_000)

test('a member removed on one node stops receiving on the other at once, and is refused there at once', async () => {
  await using cluster = await twoNodes()
  const { a, b, ws } = cluster
  const alice = await account(a, 'alice_members')
  const bob = await account(b, 'bob_members')
  const carol = await account(a, 'carol_members')
  const group = (await a('/conversations', alice.token, { title: 'Crew', member_ids: [bob.id, carol.id] })).body.id as string
  // Node B has confirmed Bob's membership (and remembers it).
  expect((await b(`/conversations/${group}/messages`, bob.token)).status).toBe(200)
  using bobOnB = await TestSocket.open(`${ws[1]}?token=${bob.token}`)
  using carolOnB = await TestSocket.open(`${ws[1]}?token=${carol.token}`)
  expect((await a(`/conversations/${group}/members/${bob.id}`, alice.token, undefined, 'DELETE')).status).toBe(204)
  expect(await bobOnB.nextOfType('member_removed')).toMatchObject({ conversation_id: group, user_id: bob.id, by: alice.id, event_seq: 1 })
  // Refused on node B at once: its memory of the membership was forgotten when the news arrived.
  expect((await b(`/conversations/${group}/messages`, bob.token)).status).toBe(403)
  expect((await b('/messages', bob.token, { message_id: crypto.randomUUID(), conversation_id: group, content: 'still here?' })).status).toBe(403)
  await a('/messages', alice.token, { message_id: crypto.randomUUID(), conversation_id: group, content: 'after bob' })
  expect((await carolOnB.nextOfType('message')).message.content).toBe('after bob')
  await bobOnB.drain()
  expect(bobOnB.received.filter((f) => f.type === 'message')).toEqual([])

  // Added back on node B: his socket on node B is told of the conversation and follows it again.
  expect((await b(`/conversations/${group}/members`, carol.token, { member_ids: [bob.id] })).status).toBe(200)
  expect(await bobOnB.nextOfType('conversation')).toMatchObject({ conversation: { id: group } })
  await a('/messages', alice.token, { message_id: crypto.randomUUID(), conversation_id: group, content: 'welcome back' })
  expect((await bobOnB.nextOfType('message')).message.content).toBe('welcome back')
}, 60_000)

test('a socket resumes on the other node: every change made meanwhile, once, then live', async () => {
  await using cluster = await twoNodes()
  const { a, b, ws } = cluster
  const alice = await account(a, 'alice_resume')
  const bob = await account(b, 'bob_resume')
  const room = (await a('/conversations', alice.token, { member_ids: [bob.id] })).body.id as string
  const first = (await a('/messages', alice.token, { message_id: crypto.randomUUID(), conversation_id: room, content: 'one' })).body
  {
    using bobOnA = await TestSocket.open(`${ws[0]}?token=${bob.token}`)
    await a('/messages', alice.token, { message_id: crypto.randomUUID(), conversation_id: room, content: 'two' })
    expect((await bobOnA.nextOfType('message')).event_seq).toBe(2)
  }
  await a(`/messages/${first.id}`, alice.token, { content: 'one, edited' }, 'PATCH')
  await a('/messages', alice.token, { message_id: crypto.randomUUID(), conversation_id: room, content: 'three' })
  using bobOnB = await TestSocket.open(`${ws[1]}?token=${bob.token}&resume=1`)
  bobOnB.send({ type: 'resume', positions: { [room]: 2 } })
  await bobOnB.nextOfType('resumed')
  await a('/messages', alice.token, { message_id: crypto.randomUUID(), conversation_id: room, content: 'four' })
  await bobOnB.next((f) => f.event_seq === 5, 'the live message')
  await bobOnB.drain()
  expect(bobOnB.received.filter((f) => typeof f.event_seq === 'number').map((f) => [f.event_seq, f.type])).toEqual([
    [3, 'message_edited'],
    [4, 'message'],
    [5, 'message'],
  ])
}, 60_000)

test("a read on one node clears the reader's unread count on a device of theirs on the other node, and the sender there sees the receipt", async () => {
  await using cluster = await twoNodes()
  const { a, b, ws } = cluster
  const alice = await account(a, 'alice_reads')
  const bob = await account(b, 'bob_reads')
  const room = (await a('/conversations', alice.token, { member_ids: [bob.id] })).body.id as string
  using bobsLaptopOnB = await TestSocket.open(`${ws[1]}?token=${bob.token}`)
  using aliceOnB = await TestSocket.open(`${ws[1]}?token=${alice.token}`)
  for (const content of ['one', 'two']) expect((await a('/messages', alice.token, { message_id: crypto.randomUUID(), conversation_id: room, content })).status).toBe(201)
  const listed = async (node: Client) => (await node('/conversations', bob.token)).body.conversations.find((c: { id: string }) => c.id === room)
  expect(await listed(b)).toMatchObject({ last_read_seq: 0, unread_count: 2 })

  // Bob's phone, on node A, reads both.
  expect((await a(`/conversations/${room}/read`, bob.token, { seq: 2 })).status).toBe(204)
  const expected = { type: 'read', conversation_id: room, user_id: bob.id, seq: 2, event_seq: 3 }
  expect(await bobsLaptopOnB.nextOfType('read')).toEqual(expected)
  expect(await aliceOnB.nextOfType('read')).toEqual(expected)
  expect(await listed(b)).toMatchObject({ last_read_seq: 2, unread_count: 0 })
  expect((await b(`/conversations/${room}/reads`, alice.token)).body).toEqual({ reads: [{ user_id: alice.id, seq: 0 }, { user_id: bob.id, seq: 2 }] })
}, 60_000)
