/**
 * Conversation lists: the p99 of GET /conversations?limit=10 for a user in 10,000 groups of 500
 * members vs a user in 10 groups of 500 (quick: 1,000 groups), on one server and one database
 * (bench/fixtures.ts listFixture: 5 million membership rows). Both pages hold 10 conversations and
 * 5,000 member ids, so the ratio is what the 9,990 more conversations cost. After a warm-up, one
 * client reads pages back to back for a round, one request at a time, so the time is the server's,
 * not a queue's: the first page, then a page 5,000 conversations deep (quick: 500), reached once
 * beforehand by following next_cursor. The baseline for both is the 10-conversation user's first page.
 */
import { join } from 'node:path'
import { LIST_FEW, LIST_GROUP_MEMBERS, listFixture, login } from '../fixtures'
import { compareMany, histogram, quick, SECONDS, startPneumatic, type Result, type Side } from '../lib'

const MANY = quick ? 1_000 : 10_000
const PAGE = 10

async function page(url: string, token: string): Promise<{ conversations: unknown[]; next_cursor: string | null }> {
  const reply = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
  if (reply.status !== 200) throw new Error(`GET /conversations: ${reply.status} ${await reply.text()}`)
  return reply.json() as Promise<{ conversations: unknown[]; next_cursor: string | null }>
}

/** Reads the page back to back for a round; the p99 in milliseconds. */
async function p99Of(url: string, token: string): Promise<number> {
  const samples = histogram()
  const until = performance.now() + SECONDS * 1000
  while (performance.now() < until) {
    const started = performance.now()
    const reply = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
    const body = await reply.arrayBuffer()
    if (reply.status !== 200 || body.byteLength === 0) throw new Error(`GET /conversations: ${reply.status}`)
    samples.recordValue(Math.max(1, Math.round((performance.now() - started) * 1000)))
  }
  return samples.getValueAtPercentile(99) / 1000
}

export async function conversationLists(dir: string): Promise<Result[]> {
  const file = join(dir, 'lists.db')
  const fixture = await listFixture(dir, file, MANY)
  const server = await startPneumatic(dir, file, {}, 'lists')
  try {
    const [manyToken, fewToken] = await login(server.base, [fixture.many, fixture.few])
    const first = `${server.base}/conversations?limit=${PAGE}`
    // Half-way down the long list, by the cursor a client would follow.
    let deep = first
    for (let seen = 0; seen < MANY / 2; seen += PAGE) {
      const { conversations, next_cursor } = await page(deep, manyToken!)
      if (conversations.length !== PAGE || next_cursor === null) throw new Error(`a page of ${conversations.length}, next_cursor ${next_cursor}`)
      deep = `${first}&cursor=${next_cursor}`
    }
    const fewPage = await page(first, fewToken!)
    if (fewPage.conversations.length !== LIST_FEW || fewPage.next_cursor !== null) throw new Error('the 10-conversation user should get all 10 on one page')
    // Warm both users' pages (statements, caches, the JIT) before anything is measured.
    for (let i = 0; i < 50; i++) for (const [url, token] of [[first, manyToken], [deep, manyToken], [first, fewToken]] as const) await page(url, token!)

    const many: Side<{ first: number; deep: number }> = {
      name: `${MANY.toLocaleString('en-US')} conversations`,
      pid: () => server.process.pid,
      measure: async () => ({ first: await p99Of(first, manyToken!), deep: await p99Of(deep, manyToken!) }),
    }
    const few: Side<{ first: number; deep: number }> = {
      name: `${LIST_FEW} conversations, first page`,
      pid: () => server.process.pid,
      measure: async () => ({ first: await p99Of(first, fewToken!), deep: await p99Of(first, fewToken!) }),
    }
    const label = `${MANY.toLocaleString('en-US')} vs ${LIST_FEW} conversations of ${LIST_GROUP_MEMBERS}, limit=${PAGE}`
    return await compareMany(
      {
        first: { scenario: `conversation list p99, first page, ${label}`, unit: 'ms', target: '≤ 2×', met: (_, r) => r <= 2 },
        deep: { scenario: `conversation list p99, a page ${(MANY / 2).toLocaleString('en-US')} conversations deep, ${label}`, unit: 'ms', target: '≤ 2×', met: (_, r) => r <= 2 },
      },
      many,
      few,
    )
  } finally {
    await server.stop()
  }
}
