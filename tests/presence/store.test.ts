import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { createLogger } from '../../src/observability/logger'
import { memoryPresence } from '../../src/presence/store.memory'
import { redisPresence } from '../../src/presence/store.redis'
import type { PresenceStore } from '../../src/presence/store'
import { startRedis, type RedisServer } from '../support/redis'

// The presence stores' rules, the same for one process (memory) and for nodes sharing Redis. Each
// "node" is a store; sweep(0) finds at once whoever has no socket left.

let redis: RedisServer
const clients: Redis[] = []
beforeAll(async () => {
  redis = await startRedis()
})
afterAll(async () => {
  for (const client of clients) client.disconnect()
  await redis[Symbol.asyncDispose]()
})

function redisNode(): PresenceStore {
  const client = new Redis(redis.url, { maxRetriesPerRequest: 0 })
  clients.push(client)
  return redisPresence(client, { nodeTimeoutSeconds: 60, logger: createLogger('silent') })
}

let users = 0
const someone = () => `user-${++users}-${crypto.randomUUID()}`

// Each test on Redis starts from an empty one: a sweep sees every node's users.
beforeEach(() => redis.cli('FLUSHALL'))

describe.each([
  ['in memory', () => memoryPresence()],
  ['on Redis', redisNode],
] as const)('presence %s', (_, makeNode) => {
  test('online from the first arrival, offline once after the grace when the last socket has gone, last seen then', async () => {
    const node = makeNode()
    await node.sweep(0)
    const alice = someone()
    expect(await node.arrived(alice)).toBe(true)
    expect(await node.onlineAmong([alice, someone()])).toEqual(new Set([alice]))
    const before = Date.now()
    await node.left(alice)
    // Not yet: the grace is a minute.
    expect((await node.sweep(60_000)).departed).toEqual([])
    const { departed } = await node.sweep(0)
    expect(departed).toEqual([{ userId: alice, lastSeenAt: expect.any(Number) }])
    expect(departed[0]!.lastSeenAt).toBeGreaterThanOrEqual(before - 5)
    expect(departed[0]!.lastSeenAt).toBeLessThanOrEqual(Date.now() + 5)
    expect((await node.sweep(0)).departed).toEqual([])
    expect(await node.onlineAmong([alice])).toEqual(new Set())
  })

  test('back within the grace: no departure, and not online again', async () => {
    const node = makeNode()
    await node.sweep(0)
    const alice = someone()
    expect(await node.arrived(alice)).toBe(true)
    await node.left(alice)
    expect(await node.arrived(alice)).toBe(false)
    expect((await node.sweep(0)).departed).toEqual([])
    expect(await node.onlineAmong([alice])).toEqual(new Set([alice]))
  })

})

describe('presence on Redis, between nodes', () => {
  const makeNode = redisNode

  test('across nodes: online until the last node holding someone lets go, whichever node sweeps', async () => {
    const [a, b] = [makeNode(), makeNode()]
    for (const node of [a, b]) await node.sweep(0)
    const alice = someone()
    expect(await a.arrived(alice)).toBe(true)
    expect(await b.arrived(alice)).toBe(false)
    await a.left(alice)
    expect((await a.sweep(0)).departed).toEqual([])
    expect((await b.sweep(0)).departed).toEqual([])
    await b.left(alice)
    // One node finds her gone; the other then finds nothing.
    expect((await a.sweep(0)).departed.map((d) => d.userId)).toEqual([alice])
    expect((await b.sweep(0)).departed).toEqual([])
  })

  test('a node Redis has forgotten says so at its next sweep, and resync holds exactly who it says: the others leave, the new ones arrive', async () => {
    const node = makeNode()
    expect((await node.sweep(0)).lost).toBe(true)
    expect((await node.sweep(0)).lost).toBe(false)
    const [alice, bob, carol] = [someone(), someone(), someone()]
    for (const user of [alice, bob]) await node.arrived(user)
    // Bob's socket closed while Redis could not be told; Carol's opened.
    expect(await node.resync([alice, carol])).toEqual([carol])
    expect((await node.sweep(0)).departed.map((d) => d.userId)).toEqual([bob])
    expect(await node.onlineAmong([alice, bob, carol])).toEqual(new Set([alice, carol]))

    await redis.cli('FLUSHALL')
    expect((await node.sweep(0)).lost).toBe(true)
    expect(await node.resync([alice, carol])).toEqual([alice, carol])
    expect(await node.onlineAmong([alice, bob, carol])).toEqual(new Set([alice, carol]))
  })
})
