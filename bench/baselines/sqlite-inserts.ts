/**
 * Baseline for durable sends: raw bun:sqlite, one message insert per transaction, with the same
 * pragmas as Pneumatic (WAL, synchronous=FULL). Runs for SECONDS and prints how many it committed.
 */
import { Database } from 'bun:sqlite'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const dir = mkdtempSync(join(tmpdir(), 'bench-sqlite-'))
const db = new Database(join(dir, 'raw.db'), { create: true })
db.run('PRAGMA journal_mode = WAL')
db.run('PRAGMA synchronous = FULL')
db.run('CREATE TABLE messages (id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, seq INTEGER NOT NULL, sender_id TEXT NOT NULL, message_id TEXT NOT NULL, content TEXT NOT NULL, created_at INTEGER NOT NULL)')
const insert = db.prepare('INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)')
const one = db.transaction((seq: number) => insert.run(crypto.randomUUID(), 'c', seq, 's', `m${seq}`, 'hello', Date.now()))
const until = performance.now() + Number(process.env.SECONDS ?? 5) * 1000
let count = 0
while (performance.now() < until) one(++count)
console.log(JSON.stringify({ count }))
db.close()
rmSync(dir, { recursive: true, force: true })
