/**
 * Databases for the bench, written directly with bun:sqlite in the schema Pneumatic's own
 * migrations create (the server is started once on the new file, then stopped): signing up a
 * thousand users costs a thousand argon2id hashes, and a million messages through the API would take
 * minutes. Nothing here is cached between runs: every file lives in the run's temporary directory.
 *
 * Users get one shared argon2id hash with tiny parameters (stored hashes carry their own), so
 * logging in through the real API is quick; everything after login is the real thing.
 *
 * On PostgreSQL (the end of this file) the fixture is small and goes through the API instead, so
 * it depends on nothing but the server's own schema.
 */
import { Database } from 'bun:sqlite'
import postgres from 'postgres'
import { wholeSecond } from '../src/shared/time'
import { api, inParallel, startPneumatic, type Pneumatic } from './lib'

export const PASSWORD = 'bench-password'

/** The schema of src/db/schema.ts, from Pneumatic's own migrations: start on the new file, stop. */
export async function migrate(dir: string, file: string): Promise<void> {
  const server = await startPneumatic(dir, file, {}, 'migrate')
  await server.stop()
}

/** A connection for bulk writing: nothing else has the file open, so durability can wait until the end. */
function bulkWriter(file: string): Database {
  const db = new Database(file)
  db.run('PRAGMA journal_mode = OFF')
  db.run('PRAGMA synchronous = OFF')
  db.run('PRAGMA cache_size = -262144') // 256 MiB
  return db
}

function finish(db: Database): void {
  db.run('PRAGMA journal_mode = WAL') // as Pneumatic opens it
  db.close()
}

const cheapHash = () => Bun.password.hash(PASSWORD, { algorithm: 'argon2id', memoryCost: 8, timeCost: 1 })

function insertUsers(db: Database, names: string[], hash: string, at: number): string[] {
  const insert = db.prepare('INSERT INTO users (id, username, full_name, password_hash, created_at) VALUES (?, ?, NULL, ?, ?)')
  return names.map((name) => {
    const id = Bun.randomUUIDv7()
    insert.run(id, name, hash, at)
    return id
  })
}

/** Inserts group conversations created at `at`, with their members (the first is the creator); statements prepared once. */
function conversationWriter(db: Database): (title: string, memberIds: string[], at: number) => string {
  const conversation = db.prepare(
    'INSERT INTO conversations (id, title, is_group, direct_key, created_by, created_at, last_seq, last_message_at) VALUES (?, ?, 1, NULL, ?, ?, 0, NULL)',
  )
  // A new conversation's activity is its creation's second, on every member's row, as Pneumatic
  // writes it. The members go in as one JSON array, in order: one statement per conversation.
  const members = db.prepare(
    'INSERT INTO conversation_members (conversation_id, user_id, joined_at, last_activity_at) SELECT ?1, value, ?2, ?3 FROM json_each(?4) ORDER BY key',
  )
  return (title, memberIds, at) => {
    const id = Bun.randomUUIDv7()
    conversation.run(id, title, memberIds[0]!, at)
    members.run(id, at, wholeSecond(at), JSON.stringify(memberIds))
    return id
  }
}

const insertConversation = (db: Database, title: string, memberIds: string[], at: number): string => conversationWriter(db)(title, memberIds, at)

export type ChatFixture = {
  /** username and id of user i */
  users: { username: string; id: string }[]
  /** 100 group conversations of 2 users: users 2c and 2c+1 are the members of rooms[c] */
  rooms: string[]
  /** One group of 32: users 0 … 31 */
  fanout: string
  /** A group of users 0 and 1, for the POST /messages, history and latency rows */
  pair: string
}

export const ROOMS = 100
export const ROOM_MEMBERS = 2
export const FANOUT_MEMBERS = 32

/** The member of rooms[c] that user index u is, for u in 0 … ROOM_MEMBERS - 1. */
export const roomMember = (room: number, u: number) => room * ROOM_MEMBERS + u

/**
 * The database of the chat scenarios: 200 users, 100 rooms of 2, a group of 32 and a pair. A user
 * is in one room only, so a socket of theirs receives that room's messages and no other's
 * (the group of 32 and the pair are quiet while the rooms are busy, and the reverse).
 */
export async function chatFixture(dir: string, file: string): Promise<ChatFixture> {
  await migrate(dir, file)
  const hash = await cheapHash()
  const db = bulkWriter(file)
  try {
    const at = Date.now()
    return db.transaction(() => {
      const names = Array.from({ length: ROOMS * ROOM_MEMBERS }, (_, i) => `bench_${i}`)
      const ids = insertUsers(db, names, hash, at)
      const rooms = Array.from({ length: ROOMS }, (_, c) => insertConversation(db, `room ${c}`, ids.slice(c * ROOM_MEMBERS, (c + 1) * ROOM_MEMBERS), at))
      const fanout = insertConversation(db, 'fan-out', ids.slice(0, FANOUT_MEMBERS), at)
      const pair = insertConversation(db, 'bench', ids.slice(0, 2), at)
      return { users: names.map((username, i) => ({ username, id: ids[i]! })), rooms, fanout, pair }
    })()
  } finally {
    finish(db)
  }
}

/** Logs users in through the real API; returns their access tokens in the same order. */
export async function login(base: string, usernames: string[]): Promise<string[]> {
  return inParallel(usernames, 8, async (username) => (await api(base, '/auth/login', undefined, { username, password: PASSWORD })).access_token as string)
}

export type HistoryFixture = { username: string; conversation: string; lastSeq: number }

/**
 * `total` messages from 10 users in 100 conversations; half of them in the conversation that is
 * measured, interleaved with the others as they would arrive. Seqs, last_seq and
 * last_message_at are consistent, as Pneumatic would have written them.
 */
export async function historyFixture(dir: string, file: string, total: number): Promise<HistoryFixture> {
  await migrate(dir, file)
  const hash = await cheapHash()
  const db = bulkWriter(file)
  try {
    return db.transaction(() => {
      const start = Date.now() - total // one message a millisecond, ending now
      const names = Array.from({ length: 10 }, (_, i) => `history_${i}`)
      const users = insertUsers(db, names, hash, start)
      const conversations = Array.from({ length: 100 }, (_, c) => insertConversation(db, `history ${c}`, users, start))
      const lastSeq = new Array<number>(conversations.length).fill(0)
      const insert = db.prepare('INSERT INTO messages (id, conversation_id, seq, sender_id, message_id, content, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      for (let i = 0; i < total; i++) {
        const c = i % 2 === 0 ? 0 : 1 + ((i >> 1) % 99)
        const seq = ++lastSeq[c]!
        insert.run(Bun.randomUUIDv7(), conversations[c]!, seq, users[i % 10]!, `m${i}`, `message ${i}: the quick brown fox jumps over the lazy dog`, start + i)
      }
      const update = db.prepare('UPDATE conversations SET last_seq = ?, last_message_at = ? WHERE id = ?')
      const active = db.prepare('UPDATE conversation_members SET last_activity_at = ? WHERE conversation_id = ?')
      conversations.forEach((id, c) => {
        update.run(lastSeq[c]!, start + total, id)
        active.run(wholeSecond(start + total), id)
      })
      return { username: names[0]!, conversation: conversations[0]!, lastSeq: lastSeq[0]! }
    })()
  } finally {
    finish(db)
  }
}

/** What the chat scenarios share: the fixture, the server on it, and every user's access token. */
export type ChatContext = { dir: string; server: Pneumatic; fixture: ChatFixture; tokens: string[] }

export type ListFixture = {
  /** In `conversations` groups of LIST_GROUP_MEMBERS */
  many: string
  /** In LIST_FEW groups of LIST_GROUP_MEMBERS */
  few: string
}

export const LIST_GROUP_MEMBERS = 500
export const LIST_FEW = 10
const LIST_POOL = 5_000

/**
 * The database of the conversation-list scenario: one user in `conversations` groups of 500 and
 * one in 10 groups of 500, the other 499 members of each group drawn in turn from 5,000 users
 * (so they are in many groups too), each group created a second after the last. With 10,000
 * groups that is 5 million membership rows, written in one transaction without a journal.
 */
export async function listFixture(dir: string, file: string, conversations: number): Promise<ListFixture> {
  await migrate(dir, file)
  const hash = await cheapHash()
  const db = bulkWriter(file)
  try {
    // Memberships' own indexes are built once at the end, from sorted rows, as their definitions
    // stand in the schema: far quicker than keeping them up to date through millions of inserts.
    const indexes = db.query("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'conversation_members' AND sql IS NOT NULL").all() as { name: string; sql: string }[]
    return db.transaction(() => {
      for (const { name } of indexes) db.run(`DROP INDEX ${name}`)
      const start = Date.now() - (conversations + LIST_FEW) * 1_000
      const [many, few] = ['lists_many', 'lists_few']
      const [manyId, fewId] = insertUsers(db, [many!, few!], hash, start)
      const pool = insertUsers(db, Array.from({ length: LIST_POOL }, (_, i) => `lists_member_${i}`), hash, start)
      const others = LIST_GROUP_MEMBERS - 1
      const group = conversationWriter(db)
      const membersOf = (owner: string, c: number) => [owner, ...Array.from({ length: others }, (_, k) => pool[(c * others + k) % LIST_POOL]!)]
      for (let c = 0; c < conversations; c++) group(`many ${c}`, membersOf(manyId!, c), start + c * 1_000)
      for (let c = 0; c < LIST_FEW; c++) group(`few ${c}`, membersOf(fewId!, c), start + (conversations + c) * 1_000)
      for (const { sql } of indexes) db.run(sql)
      return { many: many!, few: few! }
    })()
  } finally {
    finish(db)
  }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/** The machine's PostgreSQL, its maintenance database: where the bench creates and drops its own. */
export const POSTGRES_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres'

const admin = () => postgres(POSTGRES_ADMIN_URL, { max: 1, connect_timeout: 3, onnotice: () => {} })

export async function postgresReachable(): Promise<boolean> {
  const sql = admin()
  try {
    await sql`SELECT 1`
    return true
  } catch {
    return false
  } finally {
    await sql.end({ timeout: 1 })
  }
}

export type PostgresDatabase = { name: string; url: string; drop(): Promise<void> }

/** A new, empty database for this run; drop() removes it, with any connection still open to it. */
export async function freshPostgresDatabase(prefix: string): Promise<PostgresDatabase> {
  const name = `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  const sql = admin()
  try {
    await sql.unsafe(`CREATE DATABASE "${name}"`)
  } finally {
    await sql.end({ timeout: 1 })
  }
  const url = new URL(POSTGRES_ADMIN_URL)
  url.pathname = `/${name}`
  return {
    name,
    url: url.toString(),
    async drop() {
      const sql = admin()
      try {
        await sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
      } finally {
        await sql.end({ timeout: 1 })
      }
    },
  }
}

export type ApiChatFixture = {
  /** The senders' access tokens; sender k is the only one of them in rooms[k] */
  tokens: string[]
  /** A group of sender k and a user who never connects, for each sender */
  rooms: string[]
  /** A group of sender 0 and that user, for POST /messages */
  pair: string
  /** A group of sender 0 and that user holding `historyMessages` messages, for the history page */
  history: string
}

/**
 * The chat fixture through the API, on whatever database the server runs on (its schema is the
 * server's own): `senders` accounts and one more, a group of two for each sender, and two more
 * groups. Every account costs two argon2id hashes (sign-up, login) at the server's own
 * parameters, so this takes a few seconds for 64 senders.
 */
export async function apiChatFixture(base: string, senders: number, historyMessages: number): Promise<ApiChatFixture> {
  const names = Array.from({ length: senders }, (_, k) => `pg_sender_${k}`)
  const [partner] = await inParallel(['pg_partner', ...names], 8, (username) => api(base, '/auth/signup', undefined, { username, password: PASSWORD }).then((u) => u.id as string))
  const tokens = await login(base, names)
  const group = (token: string, title: string) => api(base, '/conversations', token, { title, member_ids: [partner], is_group: true }).then((c) => c.id as string)
  const rooms = await inParallel(tokens, 8, (token, k) => group(token, `room ${k}`))
  const pair = await group(tokens[0]!, 'bench')
  const history = await group(tokens[0]!, 'history')
  for (let i = 0; i < historyMessages; i++) await api(base, '/messages', tokens[0], { message_id: `seed-${i}`, conversation_id: history, content: `seed message ${i}` })
  return { tokens, rooms, pair, history }
}

export type ClusterFixture = {
  /** Access tokens of CLUSTER_USERS users; user k's token works on every node of its deployment */
  tokens: string[]
  /** A group of user 0 and a user who never connects: POST /messages from user 0 */
  pair: string
  /** A group of user k and that user, for each k: user k's socket is the only one open in it */
  rooms: string[]
  /** One group of users 0 … CLUSTER_GROUP - 1 */
  group: string
  /** Groups of users 2c and 2c + 1, c = 0 … CLUSTER_USERS / 2 - 1 */
  duos: string[]
  /** A group of users 0 and 1, quiet but for the latency rows */
  latency: string
}

export const CLUSTER_USERS = 64
export const CLUSTER_GROUP = 32

/**
 * The cluster scenario's fixture through the API of one node (bench/scenarios/cluster.ts): 64
 * users and a 65th who never connects, and the conversations of each of its rows. Like
 * apiChatFixture, each account costs two argon2id hashes at the server's own parameters.
 */
export async function apiClusterFixture(base: string): Promise<ClusterFixture> {
  const names = Array.from({ length: CLUSTER_USERS }, (_, k) => `cluster_${k}`)
  const ids = await inParallel(['cluster_quiet', ...names], 8, (username) => api(base, '/auth/signup', undefined, { username, password: PASSWORD }).then((u) => u.id as string))
  const [quiet, ...userIds] = ids
  const tokens = await login(base, names)
  const group = (creator: number, title: string, others: string[]) => api(base, '/conversations', tokens[creator], { title, member_ids: others, is_group: true }).then((c) => c.id as string)
  const rooms = await inParallel(tokens, 8, (_, k) => group(k, `room ${k}`, [quiet!]))
  const duos = await inParallel(
    Array.from({ length: CLUSTER_USERS / 2 }, (_, c) => c),
    8,
    (c) => group(2 * c, `duo ${c}`, [userIds[2 * c + 1]!]),
  )
  return {
    tokens,
    pair: await group(0, 'pair', [quiet!]),
    rooms,
    group: await group(0, 'group', userIds.slice(1, CLUSTER_GROUP)),
    duos,
    latency: await group(0, 'latency', [userIds[1]!]),
  }
}
