/**
 * Baseline for the history page on PostgreSQL: a bare Bun.serve that answers
 * GET /history?conversation=<id>&limit=<n> by running the query Pneumatic's PostgreSQL store runs
 * for a page of the newest messages, through postgres.js with the same pool size (POOL_SIZE), on
 * Pneumatic's own database (DATABASE_URL), and returning that page as JSON in Pneumatic's shape.
 * No auth, no membership check, no validation.
 */
import postgres from 'postgres'

// bigint (int8) read as a number, as Pneumatic's client reads its times and counters.
const bigintAsNumber = { to: 20, from: [20], serialize: (value: number) => String(value), parse: (value: string) => Number(value) }
const sql = postgres(process.env.DATABASE_URL!, { max: Number(process.env.POOL_SIZE ?? 10), onnotice: () => {}, types: { bigint: bigintAsNumber } })

type Row = { id: string; message_id: string; sender_id: string; conversation_id: string; content: string; created_at: number; seq: number }

async function newestPage(conversationId: string, limit: number): Promise<string> {
  const rows = await sql<Row[]>`
    SELECT id, message_id, sender_id, conversation_id, content, created_at, seq FROM messages
    WHERE conversation_id = ${conversationId} ORDER BY seq DESC LIMIT ${limit + 1}`
  const page = rows.slice(0, limit).reverse()
  const messages = page.map((r) => ({ id: r.id, message_id: r.message_id, sender_id: r.sender_id, conversation_id: r.conversation_id, content: r.content, created_at: new Date(r.created_at).toISOString(), seq: r.seq }))
  return JSON.stringify({ messages, has_more: rows.length > limit })
}

const server = Bun.serve({
  port: 0,
  hostname: '127.0.0.1',
  async fetch(request) {
    const url = new URL(request.url)
    if (url.pathname !== '/history') return new Response('not found', { status: 404 })
    const body = await newestPage(url.searchParams.get('conversation') ?? '', Number(url.searchParams.get('limit') ?? 50))
    return new Response(body, { headers: { 'content-type': 'application/json' } })
  },
})
console.log(JSON.stringify({ msg: 'listening', url: `http://127.0.0.1:${server.port}` }))
process.on('SIGTERM', async () => {
  server.stop(true)
  await sql.end({ timeout: 1 })
  process.exit(0)
})
