/**
 * Two server processes on one database, ten senders on each, writing the same conversations at
 * once: the group commit keeps its promise across processes (issue: "Writes are correct with
 * several writers"). Runs on the suite's engine: PostgreSQL with PNEUMATIC_TEST_DATABASE=postgres,
 * where this is how a cluster writes, and SQLite, where two processes share the file.
 */
import { expect, test } from 'bun:test'
import { onPostgres, testDatabase } from '../support/app'
import { jsonClient, startNodes } from '../support/process'

const SENDERS_PER_NODE = 10
const MESSAGES_PER_SENDER = 24

test('two processes, ten senders each, three shared conversations: seq is gapless and in commit order, a replay racing on the other process stores nothing, a reuse racing there is a 409, no deadlock', async () => {
  await using database = await testDatabase()
  const env = { DATABASE_URL: database.url, JWT_SECRET: 'multi-writer-secret-of-at-least-32-chars', RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_PER_HOUR: '0' }
  const deadlocksBefore = onPostgres ? await deadlocks(database) : 0
  await using nodes = await startNodes(env)
  const [a, b] = nodes.map((n) => jsonClient(n.base)) as [ReturnType<typeof jsonClient>, ReturnType<typeof jsonClient>]
  const senders: { id: string; token: string; node: typeof a; other: typeof a }[] = []
  for (let i = 0; i < 2 * SENDERS_PER_NODE; i++) {
    const node = i % 2 === 0 ? a : b
    const username = `writer_${i}`
    expect((await node('/auth/signup', undefined, { username, password: 'password123' })).status).toBe(201)
    const login = await node('/auth/login', undefined, { username, password: 'password123' })
    const me = await node('/auth/me', login.body.access_token)
    senders.push({ id: me.body.id, token: login.body.access_token, node, other: node === a ? b : a })
  }
  const everyone = senders.slice(1).map((s) => s.id)
  const rooms: string[] = []
  for (const title of ['one', 'two', 'three']) rooms.push((await a('/conversations', senders[0]!.token, { title, member_ids: everyone })).body.id)

  // Each sender sends one message after another (each after the last was acknowledged), to the
  // three rooms in turn; every fourth is sent to both processes at once, as a client retrying
  // on another node would.
  const acknowledged = new Map<string, { room: string; sender: string; order: number; id: string; seq: number }>()
  await Promise.all(
    senders.map(async (sender, s) => {
      for (let n = 0; n < MESSAGES_PER_SENDER; n++) {
        const message = { message_id: `s${s}-m${n}`, conversation_id: rooms[n % 3]!, content: `from ${s}: ${n}` }
        const replies = await Promise.all(n % 4 === 0 ? [sender.node('/messages', sender.token, message), sender.other('/messages', sender.token, message)] : [sender.node('/messages', sender.token, message)])
        for (const reply of replies) expect(reply.status).toBe(201)
        expect(new Set(replies.map((r) => r.body.id)).size).toBe(1)
        expect(replies.filter((r) => r.body.seq !== replies[0]!.body.seq)).toEqual([])
        acknowledged.set(message.message_id, { room: message.conversation_id, sender: sender.id, order: n, id: replies[0]!.body.id, seq: replies[0]!.body.seq })
      }
    }),
  )

  const stored = await database.sql<{ message_id: string; conversation_id: string; seq: number; id: string }>('SELECT message_id, conversation_id, seq, id FROM messages ORDER BY conversation_id, seq')
  expect(stored).toHaveLength(acknowledged.size) // every replay stored nothing
  for (const room of rooms) {
    const seqs = stored.filter((m) => m.conversation_id === room).map((m) => m.seq)
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1)) // gapless
  }
  for (const m of stored) expect(acknowledged.get(m.message_id)).toMatchObject({ id: m.id, seq: m.seq })
  // Commit order: a message sent after another was acknowledged has the larger seq in its room.
  for (const sender of senders) {
    const mine = [...acknowledged.values()].filter((m) => m.sender === sender.id).sort((x, y) => x.order - y.order)
    for (const room of rooms) {
      const seqs = mine.filter((m) => m.room === room).map((m) => m.seq)
      expect(seqs).toEqual(seqs.toSorted((x, y) => x - y))
    }
  }
  const counters = await database.sql<{ id: string; last_seq: number }>('SELECT id, last_seq FROM conversations ORDER BY id')
  for (const { id, last_seq } of counters) expect(last_seq).toBe(stored.filter((m) => m.conversation_id === id).length)

  // One message_id reused for two rooms, sent to both processes at once: one is stored, the
  // other is the conflicting reuse (409), never a failure.
  const sender = senders[0]!
  for (let i = 0; i < 5; i++) {
    const key = `reused-${i}`
    const replies = await Promise.all([
      a('/messages', sender.token, { message_id: key, conversation_id: rooms[0], content: 'here' }),
      b('/messages', sender.token, { message_id: key, conversation_id: rooms[1], content: 'there' }),
    ])
    expect(replies.map((r) => r.status).sort()).toEqual([201, 409])
  }
  expect(await database.sql('SELECT count(*) AS n FROM messages')).toEqual([{ n: stored.length + 5 }])
  if (onPostgres) expect(await deadlocks(database)).toBe(deadlocksBefore)
}, 120_000)

/** Deadlocks PostgreSQL has detected (and broken by failing a transaction) in this database. */
async function deadlocks(database: Awaited<ReturnType<typeof testDatabase>>): Promise<number> {
  const [row] = await database.sql<{ n: number }>('SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()')
  return row!.n
}
