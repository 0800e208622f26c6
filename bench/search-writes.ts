/**
 * bun bench/search-writes.ts [--rounds=12] [--postgres]
 *
 * What the search index costs a message being written: the message writer's own commit
 * (messages/store.ts) into two databases in this process, no server, one migrated without the
 * search migration (SQLite 0011_search, PostgreSQL 0004_search) and one with it, in alternating
 * order (A B, B A, …), so both see the same machine. SQLite: a real file with Pneumatic's pragmas
 * (WAL, synchronous=FULL); the CPU time of this process per message (the index is written on the
 * event loop, by the triggers, inside the commit) and the wall time per batch (its fsync
 * included). PostgreSQL (--postgres, on 127.0.0.1:5432): the wall time per batch, as the index is
 * written by the server; there both databases are migrated whole, and one then drops the index
 * (what the search migration adds to a write). The batch shapes are the durable sends bench's: 64 messages of "hello from
 * the bench" into one 1-on-1 (POST /messages) and one into each of 64 1-on-1s (WebSocket); and a
 * longer message (a paragraph of 60 words) to show how the cost grows with the text.
 *
 * Not part of `bun run bench`: it compares the two schemas directly, where the end-to-end rows of
 * `--only=durable` and `--only=postgres` (which the README also reports) move more between runs on
 * a shared machine than the index costs.
 */
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { drizzle as drizzleSqlite } from 'drizzle-orm/bun-sqlite'
import { migrate as migrateSqlite } from 'drizzle-orm/bun-sqlite/migrator'
import { connect, type Db } from '../src/db/client'
import { openPostgres } from '../src/db/postgres/connection'
import { commitBatch } from '../src/messages/store.sqlite'
import { postgresMessageStore } from '../src/messages/store.postgres'
import type { MessageStore, WriteJob } from '../src/messages/store'
import { freshPostgresDatabase, POSTGRES_ADMIN_URL, postgresReachable } from './fixtures'
import { pinLoadGenerator, removeDir, temporaryDir } from './lib'

const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback)
const ROUNDS = arg('rounds', 12)
const BATCHES = 60
const onPostgres = process.argv.includes('--postgres')
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const SHORT = 'hello from the bench'
const LONG = Array.from({ length: 60 }, (_, i) => ['deployment', 'friday', 'checklist', 'the', 'café', 'roadmap', 'quarterly', 'notes'][i % 8]).join(' ')
const SHAPES = [
  { name: '64 short messages into one 1-on-1', conversations: 1, content: SHORT },
  { name: '64 short messages, one into each of 64 1-on-1s', conversations: 64, content: SHORT },
  { name: '64 messages of 60 words, one into each of 64 1-on-1s', conversations: 64, content: LONG },
]

/** A copy of a migrations folder with only the migrations before `tag`. */
function migrationsBefore(dir: string, folder: string, tag: string): string {
  const journal = JSON.parse(readFileSync(join(folder, 'meta', '_journal.json'), 'utf8')) as { entries: { tag: string }[] }
  journal.entries = journal.entries.slice(0, journal.entries.findIndex((e) => e.tag === tag))
  const earlier = join(dir, `before-${tag}`)
  mkdirSync(join(earlier, 'meta'), { recursive: true })
  writeFileSync(join(earlier, 'meta', '_journal.json'), JSON.stringify(journal))
  for (const { tag: t } of journal.entries) cpSync(join(folder, `${t}.sql`), join(earlier, `${t}.sql`))
  return earlier
}

type Side = { name: string; commit: MessageStore['commit']; conversations: string[]; sender: string }

const SETUP = [
  "INSERT INTO users (id, username, password_hash, created_at) VALUES ('u1', 'ada', 'x', 1), ('u2', 'bob', 'x', 1)",
  ...Array.from({ length: 64 }, (_, c) => `INSERT INTO conversations (id, is_group, direct_key, created_by, created_at) VALUES ('c${c}', ${onPostgres ? 'false' : '0'}, 'k${c}', 'u1', 1)`),
  ...Array.from({ length: 64 }, (_, c) => `INSERT INTO conversation_members (conversation_id, user_id, joined_at) VALUES ('c${c}', 'u1', 1), ('c${c}', 'u2', 1)`),
]

let sequence = 0
const jobs = (side: Side, shape: (typeof SHAPES)[number]): WriteJob[] =>
  Array.from({ length: 64 }, (_, i) => ({
    senderId: side.sender,
    conversationId: side.conversations[i % shape.conversations]!,
    messageId: Bun.randomUUIDv7(),
    content: `${shape.content} ${++sequence}`,
    createdAt: Date.now(),
    replyTo: null,
  }))

/** Per message: median CPU µs of this process, and median wall ms per batch. */
async function measure(side: Side, shape: (typeof SHAPES)[number]): Promise<{ cpu: number; wall: number }> {
  const cpu: number[] = []
  const wall: number[] = []
  for (let b = 0; b < BATCHES; b++) {
    const batch = jobs(side, shape)
    const usage = process.cpuUsage()
    const start = performance.now()
    const outcomes = await side.commit(batch)
    wall.push(performance.now() - start)
    const used = process.cpuUsage(usage)
    cpu.push((used.user + used.system) / batch.length)
    if (outcomes.some((o) => o.kind !== 'stored')) throw new Error(`${side.name}: a write failed: ${JSON.stringify(outcomes.find((o) => o.kind !== 'stored'))}`)
  }
  return { cpu: median(cpu), wall: median(wall) }
}

pinLoadGenerator() // this process is the server here: keep it on one core, as the bench's servers are
const dir = temporaryDir('pneumatic-search-writes-')
const closers: Array<() => Promise<void> | void> = []
try {
  const sides: Side[] = []
  if (onPostgres) {
    if (!(await postgresReachable())) throw new Error(`nothing answers at ${POSTGRES_ADMIN_URL}`)
    for (const name of ['without the index', 'with the index']) {
      const database = await freshPostgresDatabase('pneumatic_bench_search')
      closers.push(() => database.drop())
      const handle = await openPostgres(database.url, { poolSize: 10 })
      closers.unshift(() => handle.close())
      // Migrated whole, then without the one thing the search migration adds to a write: its index.
      if (name === 'without the index') await handle.sql.unsafe('DROP INDEX messages_search_idx')
      for (const statement of SETUP) await handle.sql.unsafe(statement)
      const store = postgresMessageStore(handle.db)
      sides.push({ name, commit: (batch) => store.commit(batch), conversations: Array.from({ length: 64 }, (_, c) => `c${c}`), sender: 'u1' })
    }
  } else {
    const folder = join(import.meta.dir, '..', 'drizzle', 'sqlite')
    for (const name of ['without the index', 'with the index']) {
      const path = join(dir, `${name.replaceAll(' ', '-')}.db`)
      const { sqlite, db } = connect(path)
      closers.push(() => sqlite.close())
      const migrations = name === 'with the index' ? folder : migrationsBefore(dir, folder, '0011_search')
      migrateSqlite(drizzleSqlite({ client: sqlite }), { migrationsFolder: migrations })
      for (const statement of SETUP) sqlite.run(statement)
      const written: Db = db
      sides.push({ name, commit: (batch) => commitBatch(written, batch), conversations: Array.from({ length: 64 }, (_, c) => `c${c}`), sender: 'u1' })
    }
  }
  console.log(`${onPostgres ? 'PostgreSQL' : 'SQLite'}: ${ROUNDS} rounds of ${BATCHES} batches of 64 per side and shape, alternating`)
  for (const shape of SHAPES) {
    const results = new Map<string, Array<{ cpu: number; wall: number }>>(sides.map((s) => [s.name, []]))
    for (let round = 0; round < ROUNDS; round++) {
      for (const side of round % 2 === 0 ? sides : [...sides].reverse()) results.get(side.name)!.push(await measure(side, shape))
    }
    const summary = sides.map((side) => {
      const rounds = results.get(side.name)!
      return { side: side.name, cpu: median(rounds.map((r) => r.cpu)), wall: median(rounds.map((r) => r.wall)) }
    })
    const [without, withIndex] = summary
    console.log(`\n${shape.name}`)
    for (const s of summary) console.log(`  ${s.side.padEnd(18)} ${s.cpu.toFixed(1).padStart(7)} µs CPU per message   ${s.wall.toFixed(2).padStart(7)} ms per batch`)
    console.log(`  with / without     ${(withIndex!.cpu / without!.cpu).toFixed(2).padStart(7)}× CPU              ${(withIndex!.wall / without!.wall).toFixed(2).padStart(7)}× wall`)
  }
} finally {
  for (const close of closers) await close()
  removeDir(dir)
}
