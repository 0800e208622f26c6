/**
 * The database going away under a running server, on PostgreSQL: a throwaway cluster of its own
 * (tests/support/postgres-cluster.ts) is stopped and started again while clients send.
 */
import { describe, expect, test } from 'bun:test'
import postgres from 'postgres'
import { onPostgres } from '../support/app'
import { clusterUnavailable, createPostgresCluster } from '../support/postgres-cluster'
import { jsonClient, startServer } from '../support/process'

const SENDERS = 8

describe.skipIf(!onPostgres || (clusterUnavailable !== null && process.env.CI !== 'true'))('a PostgreSQL restart during sends (PostgreSQL)', () => {
  test('requests fail with 503 storage_unavailable and Retry-After, /ready says unavailable, and the server recovers by itself: nothing acknowledged is lost or doubled', async () => {
    await using cluster = await createPostgresCluster()
    const admin = postgres(cluster.url, { max: 1, onnotice: () => {} })
    await admin`CREATE DATABASE chat`
    await admin.end({ timeout: 1 })
    const server = await startServer({ DATABASE_URL: cluster.urlOf('chat'), JWT_SECRET: 'restart-test-secret-of-at-least-32-chars', RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_PER_HOUR: '0' })
    try {
      const api = jsonClient(server.base)
      for (const username of ['alice', 'bob']) expect((await api('/auth/signup', undefined, { username, password: 'password123' })).status).toBe(201)
      const token = (await api('/auth/login', undefined, { username: 'alice', password: 'password123' })).body.access_token as string
      const bob = (await api('/users', token)).body.users[0].id as string
      const room = (await api('/conversations', token, { title: 'room', member_ids: [bob] })).body.id as string

      // Senders send one message after another, until the database has been down and back.
      const acknowledged = new Set<string>()
      const refused: Array<{ status: number; code: string; retryAfter: string | null }> = []
      let phase: 'before' | 'down' | 'back' = 'before'
      let sentAfterRecovery = 0
      let n = 0
      const send = async (messageId: string) => {
        const reply = await api('/messages', token, { message_id: messageId, conversation_id: room, content: messageId })
        if (reply.status === 201) acknowledged.add(messageId)
        else refused.push({ status: reply.status, code: reply.body.error?.code, retryAfter: reply.headers.get('retry-after') })
        return reply.status
      }
      const senders = Array.from({ length: SENDERS }, async () => {
        for (let i = 0; i < 5_000 && sentAfterRecovery < 40; i++) {
          const status = await send(`m${n++}`)
          if (phase === 'back' && status === 201) sentAfterRecovery++
        }
      })
      while (acknowledged.size < 50) await send(`m${n++}`)
      await cluster.stop('immediate')
      phase = 'down'
      const ready = await api('/ready')
      expect(ready.status).toBe(503)
      expect(ready.body.status).toBe('unavailable')
      // While down, sends are refused: wait for one refusal at least.
      while (refused.length === 0) await send(`m${n++}`)
      await cluster.start()
      for (let i = 0; i < 200 && (await api('/ready')).status !== 200; i++) await Bun.sleep(50) // polling the condition, bounded
      expect((await api('/ready')).status).toBe(200)
      phase = 'back'
      await Promise.all(senders)
      expect(sentAfterRecovery).toBeGreaterThanOrEqual(40)

      expect(refused.length).toBeGreaterThan(0)
      for (const r of refused) expect(r).toEqual({ status: 503, code: 'storage_unavailable', retryAfter: '5' })

      // A client retries what was refused, with the same message_id: everything is then stored once.
      const all = Array.from({ length: n }, (_, i) => `m${i}`)
      for (const id of all.filter((id) => !acknowledged.has(id))) expect(await send(id)).toBe(201)
      const stored: string[] = []
      for (let after = 0; ; ) {
        const page = (await api(`/conversations/${room}/messages?limit=200&after=${after}`, token)).body
        stored.push(...page.messages.map((m: { message_id: string }) => m.message_id))
        if (!page.has_more) break
        after = page.messages.at(-1).seq
      }
      expect(stored.toSorted()).toEqual(all.toSorted())
    } finally {
      server.process.kill('SIGKILL')
      await server.process.exited
    }
  }, 90_000)
})
