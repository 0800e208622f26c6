/**
 * Databases for the bench, written directly with bun:sqlite in the schema Pneumatic's own
 * migrations create (the server is started once on the new file, then stopped): signing up a
 * thousand users costs a thousand argon2id hashes, and a million messages through the API would take
 * minutes. Nothing here is cached between runs: every file lives in the run's temporary directory.
 *
 * Users get one shared argon2id hash with tiny parameters (stored hashes carry their own), so
 * logging in through the real API is quick; everything after login is the real thing.
 */
import { Database } from 'bun:sqlite'
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

function insertConversation(db: Database, title: string, memberIds: string[], at: number): string {
  const id = Bun.randomUUIDv7()
  db.prepare('INSERT INTO conversations (id, title, is_group, direct_key, created_by, created_at, last_seq, last_message_at) VALUES (?, ?, 1, NULL, ?, ?, 0, NULL)').run(
    id,
    title,
    memberIds[0]!,
    at,
  )
  const member = db.prepare('INSERT INTO conversation_members (conversation_id, user_id, joined_at) VALUES (?, ?, ?)')
  for (const userId of memberIds) member.run(id, userId, at)
  return id
}

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
      conversations.forEach((id, c) => update.run(lastSeq[c]!, start + total, id))
      return { username: names[0]!, conversation: conversations[0]!, lastSeq: lastSeq[0]! }
    })()
  } finally {
    finish(db)
  }
}

/** What the chat scenarios share: the fixture, the server on it, and every user's access token. */
export type ChatContext = { dir: string; server: Pneumatic; fixture: ChatFixture; tokens: string[] }
