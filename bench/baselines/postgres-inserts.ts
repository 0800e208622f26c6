/**
 * Baseline for durable sends on PostgreSQL: a bare Bun.serve that stores each POSTed message
 * ({message_id, conversation_id, content}, as POST /messages takes it) in a transaction of its own
 * through postgres.js, the driver Pneumatic uses, with the same pool size (POOL_SIZE). A chat must
 * number its messages, so each transaction advances its conversation's counter (which holds that
 * row's lock until COMMIT) and inserts the message with the new seq; it answers 201 with the row
 * only after COMMIT. No auth, no validation, no idempotency check, no fan-out.
 *
 * Its tables, made here in the database of its own that DATABASE_URL names, have the columns and
 * unique indexes of Pneumatic's messages and the counter of its conversations, without foreign
 * keys; CONVERSATIONS (comma-separated ids) are the conversations it accepts.
 */
import postgres from 'postgres'

// bigint (int8) read as a number, as Pneumatic's client reads its times and counters.
const bigintAsNumber = { to: 20, from: [20], serialize: (value: number) => String(value), parse: (value: string) => Number(value) }
const sql = postgres(process.env.DATABASE_URL!, { max: Number(process.env.POOL_SIZE ?? 10), onnotice: () => {}, types: { bigint: bigintAsNumber } })
await sql`CREATE TABLE conversations (id text COLLATE "C" PRIMARY KEY, last_seq bigint NOT NULL DEFAULT 0, last_message_at bigint)`
await sql`
  CREATE TABLE messages (
    id text COLLATE "C" PRIMARY KEY, conversation_id text COLLATE "C" NOT NULL, seq bigint NOT NULL, sender_id text COLLATE "C" NOT NULL,
    message_id text COLLATE "C" NOT NULL, content text COLLATE "C" NOT NULL, created_at bigint NOT NULL
  )`
await sql`CREATE UNIQUE INDEX messages_conversation_seq_idx ON messages (conversation_id, seq)`
await sql`CREATE UNIQUE INDEX messages_message_id_sender_idx ON messages (message_id, sender_id)`
const conversations = (process.env.CONVERSATIONS ?? '').split(',').filter(Boolean)
if (conversations.length) await sql`INSERT INTO conversations ${sql(conversations.map((id) => ({ id })))}`

const SENDER = 'baseline-sender'

async function store(body: { message_id: string; conversation_id: string; content: string }) {
  const createdAt = Date.now()
  return sql.begin(async (tx) => {
    const [counter] = await tx`UPDATE conversations SET last_seq = last_seq + 1, last_message_at = ${createdAt} WHERE id = ${body.conversation_id} RETURNING last_seq`
    if (!counter) return null
    const row = { id: Bun.randomUUIDv7(), conversation_id: body.conversation_id, seq: counter.last_seq as number, sender_id: SENDER, message_id: body.message_id, content: body.content, created_at: createdAt }
    await tx`INSERT INTO messages ${tx(row)}`
    return row
  })
}

const server = Bun.serve({
  port: 0,
  hostname: '127.0.0.1',
  async fetch(request) {
    if (request.method !== 'POST' || new URL(request.url).pathname !== '/messages') return new Response('not found', { status: 404 })
    const row = await store((await request.json()) as Parameters<typeof store>[0])
    if (!row) return new Response('no such conversation', { status: 404 })
    return Response.json({ ...row, created_at: new Date(row.created_at).toISOString() }, { status: 201 })
  },
})
console.log(JSON.stringify({ msg: 'listening', url: `http://127.0.0.1:${server.port}` }))
process.on('SIGTERM', async () => {
  server.stop(true)
  await sql.end({ timeout: 1 })
  process.exit(0)
})
