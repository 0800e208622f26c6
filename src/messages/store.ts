import { and, eq, lt, sql } from 'drizzle-orm'
import { perDatabase, type Db } from '../db/client'
import { storageUnavailable } from '../db/storage'
import { conversationMembers, conversations, messages, type MessageRow } from '../db/schema'
import { rememberBounded } from '../shared/bounded'
import { newId } from '../shared/ids'
import { wholeSecond } from '../shared/time'

/**
 * The SQL of storing messages, shared by the inline writer (the default, on the event loop) and
 * the worker writer (MESSAGE_WRITER=worker, see writer.ts): plain data in, plain data out, so a
 * batch and its outcomes cross a thread boundary as they are.
 */

/** A validated message from a member, ready to be stored. */
export type WriteJob = {
  senderId: string
  conversationId: string
  messageId: string
  content: string
  /** When the server accepted it (epoch ms), by the clock of the thread that serves requests. */
  createdAt: number
}

/** What became of one job: stored (or found stored), refused as a conflicting reuse, or failed. */
export type WriteOutcome =
  | { kind: 'stored'; row: MessageRow; created: boolean }
  | { kind: 'conflict' }
  | { kind: 'failed'; error: { name: string; message: string; code?: string } }

/**
 * Stores a batch in one IMMEDIATE transaction: one fsync for all of it. A refusal of one message
 * (a conflicting message_id) is an outcome inside the batch. If the transaction itself fails, each
 * job is retried in a transaction of its own, so one message the database refuses fails alone;
 * unless the storage failed (a full disk...), which fails them all alike, and at once. A failed
 * transaction is rolled back (by SQLite, or by bun:sqlite's transaction), so the next batch starts clean.
 */
export function commitBatch(db: Db, jobs: readonly WriteJob[]): WriteOutcome[] {
  try {
    let marked: Map<string, number> = new Map()
    const outcomes = db.transaction(
      () => {
        const written = jobs.map((job) => write(db, job))
        marked = markActive(db, written)
        return written
      },
      { behavior: 'immediate' },
    )
    for (const [conversationId, at] of marked) rememberBounded(markedAt(db), conversationId, at, MAX_MARKED)
    return outcomes
  } catch (error) {
    if (jobs.length === 1 || storageUnavailable(error)) return jobs.map(() => failed(error))
    return jobs.flatMap((job) => commitBatch(db, [job]))
  }
}

function failed(error: unknown): WriteOutcome {
  const e = error instanceof Error ? error : new Error(String(error))
  const code = (e as { code?: unknown }).code
  return { kind: 'failed', error: { name: e.name, message: e.message, ...(typeof code === 'string' ? { code } : {}) } }
}

/** One message inside the batch's transaction; a refusal is returned before anything is written. */
function write(db: Db, { senderId, conversationId, messageId, content, createdAt }: WriteJob): WriteOutcome {
  const statements = statementsFor(db)
  const existing = statements.existing.get({ senderId, messageId })
  if (existing) {
    if (existing.conversationId !== conversationId || existing.content !== content) return { kind: 'conflict' }
    return { kind: 'stored', row: existing, created: false }
  }
  const { seq } = statements.nextSeq.get({ conversationId, createdAt })!
  const row: MessageRow = { id: newId(), conversationId, seq, senderId, messageId, content, createdAt }
  statements.insert.run(row)
  return { kind: 'stored', row, created: true }
}

/**
 * Moves each conversation the batch stored messages in to the second of its newest message on
 * every member's row, which orders each member's conversation list. Each write moves an index
 * entry per member, so it happens once per conversation per batch, not per message, and not again
 * within the same second: a busy group's rows are written at most once a second, however many of
 * its messages are committed in it.
 */
function markActive(db: Db, outcomes: readonly WriteOutcome[]): Map<string, number> {
  const newest = new Map<string, number>()
  for (const outcome of outcomes) {
    if (outcome.kind !== 'stored' || !outcome.created) continue
    const { conversationId, createdAt } = outcome.row
    newest.set(conversationId, Math.max(newest.get(conversationId) ?? 0, wholeSecond(createdAt)))
  }
  const { moveMembers } = statementsFor(db)
  const known = markedAt(db)
  for (const [conversationId, at] of newest) {
    // Already there (written by an earlier commit here, and activity never goes back): no statement.
    if ((known.get(conversationId) ?? -1) >= at) newest.delete(conversationId)
    else moveMembers.run({ conversationId, at })
  }
  return newest
}

/**
 * The second each conversation's member rows were last moved to by this connection's commits,
 * remembered once committed: a busy conversation's later batches in that second skip the
 * statement. Bounded: past MAX_MARKED the oldest is forgotten (and simply looked up again).
 */
const markedAt = perDatabase(() => new Map<string, number>())
const MAX_MARKED = 10_000

/** Prepared once per database: a batch runs them many times. */
const statementsFor = perDatabase((db) => ({
  existing: db
    .select()
    .from(messages)
    .where(and(eq(messages.senderId, sql.placeholder('senderId')), eq(messages.messageId, sql.placeholder('messageId'))))
    .prepare(),
  nextSeq: db
    .update(conversations)
    .set({ lastSeq: sql`${conversations.lastSeq} + 1`, lastMessageAt: sql`${sql.placeholder('createdAt')}` })
    .where(eq(conversations.id, sql.placeholder('conversationId')))
    .returning({ seq: conversations.lastSeq })
    .prepare(),
  // Rows already at that second are left alone; and never back in time (a clock stepping back): a
  // list being paged relies on activity only growing.
  moveMembers: db
    .update(conversationMembers)
    .set({ lastActivityAt: sql`${sql.placeholder('at')}` })
    .where(and(eq(conversationMembers.conversationId, sql.placeholder('conversationId')), lt(conversationMembers.lastActivityAt, sql.placeholder('at'))))
    .prepare(),
  insert: db
    .insert(messages)
    .values({
      id: sql.placeholder('id'),
      conversationId: sql.placeholder('conversationId'),
      seq: sql.placeholder('seq'),
      senderId: sql.placeholder('senderId'),
      messageId: sql.placeholder('messageId'),
      content: sql.placeholder('content'),
      createdAt: sql.placeholder('createdAt'),
    })
    .prepare(),
}))
