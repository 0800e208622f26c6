/**
 * HTTP: GET /health and a 50-message history page, 32 requests in flight, vs a bare Bun.serve
 * returning the same bytes (bench/baselines/bare-http.ts).
 */
import type { ChatContext } from '../fixtures'
import { api, compare, spawnBaseline, stop, rate, type Result, type Side } from '../lib'

export const CONCURRENCY = 32

export async function httpRequests({ server, fixture, tokens }: ChatContext): Promise<Result[]> {
  const token = tokens[0]!
  for (let i = 0; i < 60; i++) await api(server.base, '/messages', token, { message_id: `seed-${i}`, conversation_id: fixture.pair, content: `seed message ${i}` })
  const historyPath = `/conversations/${fixture.pair}/messages?limit=50`
  const historyBody = await (await fetch(server.base + historyPath, { headers: { authorization: `Bearer ${token}` } })).text()

  const bare = await spawnBaseline('bare-http.ts', { HISTORY_BODY: historyBody })
  try {
    const get = (url: string, headers: Record<string, string> = {}) => async () => {
      const reply = await fetch(url, { headers })
      await reply.arrayBuffer()
      return reply.ok
    }
    const pneumatic = (path: string, headers: Record<string, string> = {}): Side => ({ name: 'pneumatic', pid: () => server.process.pid, measure: () => rate(CONCURRENCY, get(server.base + path, headers)) })
    const bareSide = (path: string): Side => ({ name: 'bare Bun.serve', pid: () => bare.child.pid, measure: () => rate(CONCURRENCY, get(bare.url + path)) })
    return [
      await compare('GET /health', 'requests/s', pneumatic('/health'), bareSide('/health'), '≥ 0.8×', (_, r) => r >= 0.8),
      await compare('GET history (limit=50)', 'requests/s', pneumatic(historyPath, { authorization: `Bearer ${token}` }), bareSide('/history'), '≥ 0.8×', (_, r) => r >= 0.8),
    ]
  } finally {
    await stop(bare.child)
  }
}
