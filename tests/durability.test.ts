import { expect, test } from 'bun:test'
import { onPostgres, testDatabase } from './support/app'
import { startServer } from './support/process'

const SENDS = 1000
const KILL_AFTER_ACKS = 150

test('kill -9 during 1,000 concurrent sends: every acknowledged message survives exactly once, the database is sound, and retries add no duplicates', async () => {
  await using database = await testDatabase()
  const env = {
    DATABASE_URL: database.url,
    JWT_SECRET: 'crash-test-secret-of-at-least-32-chars',
    RATE_LIMIT_PER_MINUTE: '0',
    RATE_LIMIT_PER_HOUR: '0',
  }
  let server = await startServer(env)
  try {
    const api = (path: string, token?: string, body?: unknown) =>
      fetch(server.base + path, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
    for (const username of ['alice', 'bob']) await api('/auth/signup', undefined, { username, password: 'password123' })
    const { access_token: token } = (await (await api('/auth/login', undefined, { username: 'alice', password: 'password123' })).json()) as { access_token: string }
    const bob = ((await (await api('/users', token)).json()) as { users: { id: string }[] }).users[0]!.id
    const { id: conversationId } = (await (await api('/conversations', token, { title: 'crash room', member_ids: [bob] })).json()) as { id: string }

    const frames = Array.from({ length: SENDS }, (_, i) => ({ message_id: `crash-${i}`, conversation_id: conversationId, content: `message ${i}` }))
    const acknowledged = new Set<string>()
    let killed = false
    await Promise.all(
      frames.map(async (frame) => {
        try {
          const reply = await api('/messages', token, frame)
          if (reply.status === 201) acknowledged.add(frame.message_id)
          // Kill the moment enough sends are acknowledged, with the rest still in flight.
          if (!killed && acknowledged.size >= KILL_AFTER_ACKS) {
            killed = true
            server.process.kill('SIGKILL')
          }
        } catch {
          // In flight when the process died: not acknowledged, so the client will retry it.
        }
      }),
    )
    await server.process.exited
    expect(killed).toBe(true)
    expect(acknowledged.size).toBeGreaterThanOrEqual(KILL_AFTER_ACKS)
    expect(acknowledged.size).toBeLessThan(SENDS)

    server = await startServer(env)
    const stored = async () => {
      const ids: string[] = []
      let after = 0
      for (;;) {
        const page = (await (await api(`/conversations/${conversationId}/messages?limit=200&after=${after}`, token)).json()) as {
          messages: { message_id: string; seq: number }[]
          has_more: boolean
        }
        ids.push(...page.messages.map((m) => m.message_id))
        if (!page.has_more) return ids
        after = page.messages.at(-1)!.seq
      }
    }
    const afterCrash = await stored()
    expect(new Set(afterCrash).size).toBe(afterCrash.length) // nothing twice
    for (const id of acknowledged) expect(afterCrash).toContain(id) // nothing acknowledged lost

    // Clients retry what was never acknowledged, with the same message_id.
    const retries = await Promise.all(frames.filter((f) => !acknowledged.has(f.message_id)).map((f) => api('/messages', token, f)))
    expect(retries.every((r) => r.status === 200 || r.status === 201)).toBe(true)
    const final = await stored()
    expect(final).toHaveLength(SENDS)
    expect(new Set(final).size).toBe(SENDS)

    if (!onPostgres) expect(await database.sql('PRAGMA integrity_check')).toEqual([{ integrity_check: 'ok' }])
    const seqs = await database.sql<{ seq: number }>('SELECT seq FROM messages WHERE conversation_id = ? ORDER BY seq', conversationId)
    expect(seqs.map((r) => r.seq)).toEqual(Array.from({ length: SENDS }, (_, i) => i + 1))
  } finally {
    server.process.kill('SIGKILL')
    await server.process.exited
  }
}, 120_000)
