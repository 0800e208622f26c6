/**
 * Durable sends and a history page with Pneumatic on PostgreSQL (DATABASE_URL=postgres://…, on
 * the machine's PostgreSQL at 127.0.0.1:5432), each against a raw baseline on the same driver,
 * postgres.js, with the same pool size. The run creates two databases of its own and drops them at
 * the end: Pneumatic's (its schema from its own migrations, at start-up; its fixture through the
 * API, bench/fixtures.ts) and the insert baseline's. PostgreSQL itself is not pinned: its
 * backends run on either core, beside the server or the load generator.
 *
 * - Durable sends, POST /messages: 64 requests in flight from one user into one conversation, as
 *   in durable.ts, vs bench/baselines/postgres-inserts.ts, a bare Bun.serve storing each POST in
 *   a transaction of its own (the conversation's counter advanced, the message inserted), all 64
 *   into one conversation too.
 * - Durable sends, WebSocket: 64 users with a socket each, one message in flight each, each into a
 *   group of its own, as in durable.ts, vs the same baseline taking 64 POSTs in flight, one into
 *   each of the same 64 conversations.
 * - GET a 50-message history page, 32 requests in flight, vs bench/baselines/postgres-history.ts,
 *   a bare Bun.serve running the same query on Pneumatic's database and returning the same JSON.
 */
import { apiChatFixture, freshPostgresDatabase, POSTGRES_ADMIN_URL, postgresReachable, type ApiChatFixture, type PostgresDatabase } from '../fixtures'
import { closeSockets, compare, openSockets, rate, spawnBaseline, startPneumatic, stop, warn, type Pneumatic, type Result, type Side } from '../lib'
import { postSends, SENDERS, socketSends } from './durable'
import { CONCURRENCY } from './http'

/** Pneumatic's pool (DATABASE_POOL_SIZE) and each baseline's. */
const POOL_SIZE = 10
const HISTORY_MESSAGES = 60
const HISTORY_LIMIT = 50

export async function postgresRows(dir: string): Promise<Result[]> {
  if (!(await postgresReachable())) {
    warn(`PostgreSQL rows skipped: nothing answers at ${new URL(POSTGRES_ADMIN_URL).host}`)
    return []
  }
  const databases: PostgresDatabase[] = []
  try {
    const pneumaticDatabase = await freshPostgresDatabase('pneumatic_bench')
    databases.push(pneumaticDatabase)
    const rawDatabase = await freshPostgresDatabase('pneumatic_bench_raw')
    databases.push(rawDatabase)
    const server = await startPneumatic(dir, '', { DATABASE_URL: pneumaticDatabase.url, DATABASE_POOL_SIZE: String(POOL_SIZE) }, 'pneumatic-postgres')
    try {
      const fixture = await apiChatFixture(server.base, SENDERS, HISTORY_MESSAGES)
      return [...(await durableSends(server, fixture, rawDatabase)), await historyPage(server, fixture, pneumaticDatabase)]
    } finally {
      await server.stop()
    }
  } finally {
    for (const database of databases) await database.drop()
  }
}

async function durableSends(server: Pneumatic, fixture: ApiChatFixture, rawDatabase: PostgresDatabase): Promise<Result[]> {
  const raw = await spawnBaseline('postgres-inserts.ts', { DATABASE_URL: rawDatabase.url, POOL_SIZE: String(POOL_SIZE), CONVERSATIONS: [fixture.pair, ...fixture.rooms].join(',') })
  const rawSide = (conversationIds: string[]): Side => ({ name: 'raw postgres.js, 1 insert + counter update per transaction', pid: () => raw.child.pid, measure: postSends(raw.url, '', conversationIds) })
  const pneumatic = (measure: () => Promise<number>): Side => ({ name: 'pneumatic', pid: () => server.process.pid, measure })
  try {
    const results = [
      await compare('durable sends on PostgreSQL (64 senders, POST /messages)', 'messages/s', pneumatic(postSends(server.base, fixture.tokens[0]!, [fixture.pair])), rawSide([fixture.pair]), '—', () => null),
    ]
    const sockets = await openSockets(fixture.tokens.map((token) => `${server.ws}?token=${token}`))
    try {
      const peers = sockets.map((ws, k) => ({ ws, conversationId: fixture.rooms[k]! }))
      results.push(
        await compare('durable sends on PostgreSQL (64 senders, WebSocket)', 'messages/s', pneumatic(socketSends(peers, 'durable WebSocket sends on PostgreSQL')), rawSide(fixture.rooms), '—', () => null),
      )
    } finally {
      await closeSockets(sockets)
    }
    return results
  } finally {
    await stop(raw.child)
  }
}

async function historyPage(server: Pneumatic, fixture: ApiChatFixture, pneumaticDatabase: PostgresDatabase): Promise<Result> {
  const token = fixture.tokens[0]!
  const pneumaticUrl = `${server.base}/conversations/${fixture.history}/messages?limit=${HISTORY_LIMIT}`
  const bare = await spawnBaseline('postgres-history.ts', { DATABASE_URL: pneumaticDatabase.url, POOL_SIZE: String(POOL_SIZE) })
  const bareUrl = `${bare.url}/history?conversation=${fixture.history}&limit=${HISTORY_LIMIT}`
  try {
    const [ours, theirs] = await Promise.all([fetch(pneumaticUrl, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.text()), fetch(bareUrl).then((r) => r.text())])
    if (ours !== theirs) warn(`history on PostgreSQL: the baseline's page differs from Pneumatic's (${theirs.length} vs ${ours.length} bytes): ${theirs.slice(0, 120)} … vs ${ours.slice(0, 120)} …`)
    const get = (url: string, headers: Record<string, string> = {}) => async () => {
      const reply = await fetch(url, { headers })
      await reply.arrayBuffer()
      return reply.ok
    }
    return await compare(
      `GET history on PostgreSQL (limit=${HISTORY_LIMIT})`,
      'requests/s',
      { name: 'pneumatic', pid: () => server.process.pid, measure: () => rate(CONCURRENCY, get(pneumaticUrl, { authorization: `Bearer ${token}` })) },
      { name: 'bare Bun.serve, the same query through postgres.js', pid: () => bare.child.pid, measure: () => rate(CONCURRENCY, get(bareUrl)) },
      '—',
      () => null,
    )
  } finally {
    await stop(bare.child)
  }
}
