/**
 * Baseline for the history page on PostgreSQL: a bare Bun.serve that answers
 * GET /history?conversation=<id>&limit=<n> by running the query Pneumatic's PostgreSQL store runs
 * for a page of the newest messages, through postgres.js with the same pool size (POOL_SIZE), on
 * Pneumatic's own database (DATABASE_URL), and returning that page as JSON in Pneumatic's shape.
 * No auth, no membership check, no validation.
 */
import postgres from 'postgres'
import type { MessageRow } from '../../src/messages/store'

// bigint (int8) read as a number, as Pneumatic's client reads its times and counters.
const bigintAsNumber = { to: 20, from: [20], serialize: (value: number) => String(value), parse: (value: string) => Number(value) }
const sql = postgres(process.env.DATABASE_URL!, { max: Number(process.env.POOL_SIZE ?? 10), onnotice: () => {}, types: { bigint: bigintAsNumber } })

/** A message row as the store reads it (src/messages/store.ts), and whether more follow. */
type Row = MessageRow & { hasMore: boolean }

const isoOrNull = (at: number | null) => (at === null ? null : new Date(at).toISOString())

/**
 * The newest `limit` messages, oldest first, as src/messages/store.postgres.ts's pageQuery asks
 * for them (from 'newest', no after or before): `beyond`, the seq of the limit+1-th newest, both
 * bounds the page and says has_more. Sent as postgres.js sends a tagged query (prepared).
 */
async function newestPage(conversationId: string, limit: number): Promise<string> {
  const [after, before] = [0, Number.MAX_SAFE_INTEGER]
  const range = sql`conversation_id = ${conversationId} AND seq > ${after}::bigint AND seq < ${before}::bigint`
  const beyond = sql`(SELECT seq FROM messages WHERE ${range} ORDER BY seq DESC LIMIT 1 OFFSET ${limit}::bigint)`
  const rows = await sql<Row[]>`
    SELECT id, conversation_id AS "conversationId", seq, sender_id AS "senderId", message_id AS "messageId", content, created_at AS "createdAt",
      edited_at AS "editedAt", deleted_at AS "deletedAt", reply_to AS "replyTo", reactions, ${beyond} IS NOT NULL AS "hasMore"
    FROM messages WHERE conversation_id = ${conversationId} AND seq > coalesce(${beyond}, ${after}::bigint) AND seq < ${before}::bigint ORDER BY seq`
  // The Message shape, field for field, as Pneumatic sends it (src/messages/model.ts).
  const messages = rows.map((r) => ({
    id: r.id,
    message_id: r.messageId,
    sender_id: r.senderId,
    conversation_id: r.conversationId,
    content: r.content,
    created_at: new Date(r.createdAt).toISOString(),
    seq: r.seq,
    edited_at: isoOrNull(r.editedAt),
    deleted_at: isoOrNull(r.deletedAt),
    reply_to: r.replyTo,
    reactions: r.reactions === null ? [] : JSON.parse(r.reactions),
  }))
  return JSON.stringify({ messages, has_more: rows[0]?.hasMore === true })
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
