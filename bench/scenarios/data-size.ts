/**
 * Data size: the p99 of a history page with 1,000,000 messages in the database vs with 1,000
 * (quick: 100,000 vs 1,000). Both databases are built for this run (bench/fixtures.ts): half the
 * messages are in the conversation that is read, interleaved with 99 others. One client reads
 * pages back to back, one request at a time, so the time is the server's, not a queue's:
 * the newest page (limit=50), then a page from the middle (before=<half of last_seq>).
 */
import { join } from 'node:path'
import { historyFixture, login, type HistoryFixture } from '../fixtures'
import { compareMany, histogram, quick, SECONDS, startPneumatic, type Pneumatic, type Result, type Side } from '../lib'

const BIG = quick ? 100_000 : 1_000_000
const SMALL = 1_000

/** Reads the page back to back for half a round; the p99 in milliseconds. */
async function p99Of(url: string, token: string): Promise<number> {
  const samples = histogram()
  const until = performance.now() + (SECONDS / 2) * 1000
  while (performance.now() < until) {
    const started = performance.now()
    const reply = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
    await reply.arrayBuffer()
    if (reply.status !== 200) throw new Error(`history page: ${reply.status}`)
    samples.recordValue(Math.max(1, Math.round((performance.now() - started) * 1000)))
  }
  return samples.getValueAtPercentile(99) / 1000
}

export async function dataSize(dir: string): Promise<Result[]> {
  const servers: Pneumatic[] = []
  try {
    const side = async (name: string, messages: number): Promise<Side<{ newest: number; middle: number }>> => {
      const file = join(dir, `history-${messages}.db`)
      const fixture: HistoryFixture = await historyFixture(dir, file, messages)
      const server = await startPneumatic(dir, file, {}, `history-${messages}`)
      servers.push(server)
      const [token] = await login(server.base, [fixture.username])
      const page = `${server.base}/conversations/${fixture.conversation}/messages?limit=50`
      return {
        name,
        pid: () => server.process.pid,
        measure: async () => ({ newest: await p99Of(page, token!), middle: await p99Of(`${page}&before=${Math.floor(fixture.lastSeq / 2)}`, token!) }),
      }
    }
    const big = await side(`${BIG.toLocaleString('en-US')} messages`, BIG)
    const small = await side(`${SMALL.toLocaleString('en-US')} messages`, SMALL)
    const label = `${BIG.toLocaleString('en-US')} vs ${SMALL.toLocaleString('en-US')} messages`
    return await compareMany(
      {
        newest: { scenario: `history newest page p99, ${label}`, unit: 'ms', target: '≤ 1.5×', met: (_, r) => r <= 1.5 },
        middle: { scenario: `history page before= middle p99, ${label}`, unit: 'ms', target: '≤ 1.5×', met: (_, r) => r <= 1.5 },
      },
      big,
      small,
    )
  } finally {
    for (const server of servers) await server.stop()
  }
}
