/**
 * A cluster as it is deployed: two nodes on one database (the suite's engine) and one Redis, behind
 * a real load balancer (Debian's nginx, round robin, terminating TLS), clients talking only to it.
 */
import { describe, expect, test } from 'bun:test'
import { testDatabase } from '../support/app'
import { jsonClient, startNodes } from '../support/process'
import { startRedis } from '../support/redis'
import { SELF_SIGNED, skipProxyTests, startTlsProxy } from '../support/tls-proxy'
import { TestSocket } from '../support/ws'

describe.skipIf(skipProxyTests)('a cluster behind a load balancer', () => {
  test('whichever node serves each request and holds each socket, every socket gets every message once, in seq order', async () => {
    await using database = await testDatabase()
    await using redis = await startRedis()
    const env = { DATABASE_URL: database.url, REDIS_URL: redis.url, JWT_SECRET: 'cluster-test-secret-of-at-least-32-chars', TRUST_PROXY: '1', RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_PER_HOUR: '0' }
    await using nodes = await startNodes(env)
    await using proxy = await startTlsProxy(nodes.map((n) => n.base))
    const api = jsonClient(proxy.base, { tls: SELF_SIGNED })
    const people = []
    for (const username of ['alice_cluster', 'bob_cluster']) {
      expect((await api('/auth/signup', undefined, { username, password: 'password123' })).status).toBe(201)
      const token = (await api('/auth/login', undefined, { username, password: 'password123' })).body.access_token as string
      people.push({ token, id: (await api('/auth/me', token)).body.id as string })
    }
    const [alice, bob] = people as [{ token: string; id: string }, { token: string; id: string }]
    const room = (await api('/conversations', alice.token, { member_ids: [bob.id] })).body.id as string

    // Two sockets each, through the balancer: they land on both nodes.
    const sockets: TestSocket[] = []
    for (const person of [alice, bob, alice, bob]) {
      sockets.push(await TestSocket.open(`${proxy.base.replace('https:', 'wss:')}/ws?token=${person.token}`, { tls: SELF_SIGNED } as never))
    }
    try {
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
    } finally {
      for (const socket of sockets) socket.close()
    }
  }, 60_000)
})
