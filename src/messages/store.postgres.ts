import type postgres from 'postgres'
import { recordChange } from '../conversations/store.postgres'
import type { PostgresDb } from '../db/postgres/connection'
import { driverError, storageUnavailable } from '../db/storage'
import { rememberBounded } from '../shared/bounded'
import { newId } from '../shared/ids'
import { wholeSecond } from '../shared/time'
import { toMessage } from './model'
import { failedOutcome, isRetryOf, reactionsJson, type MessageChangeInput, type MessageRow, type MessageStore, type PageRange, type ReactionInput, type WriteJob, type WriteOutcome } from './store'

const UNIQUE_VIOLATION = '23505'

type Tx = postgres.TransactionSql

/** A stored message's columns, named as MessageRow's fields. */
const MESSAGE_COLUMNS = `id, conversation_id AS "conversationId", seq, sender_id AS "senderId", message_id AS "messageId", content, created_at AS "createdAt", edited_at AS "editedAt", deleted_at AS "deletedAt", reply_to AS "replyTo", reactions`

/**
 * The batch's statements: each a fixed text over arrays (one element per conversation or message),
 * so postgres.js prepares each once per connection, whatever the batch's size. Text from arrays
 * compares as "C", as the columns do.
 */
const CUSTOM_PLANS = 'SET LOCAL plan_cache_mode = force_custom_plan'
const LOCK_COUNTERS = `SELECT id FROM conversations WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`
const STORED = `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE (message_id, sender_id) IN (SELECT m, s FROM unnest($2::text[], $1::text[]) AS k(m, s))`
const ADVANCE_COUNTERS = `UPDATE conversations AS c SET last_seq = c.last_seq + v.count, last_event_seq = c.last_event_seq + v.count, last_message_at = v.at
  FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS v(id, count, at)
  WHERE c.id = v.id COLLATE "C" RETURNING c.id, c.last_seq AS "lastSeq", c.last_event_seq AS "lastEventSeq"`
const INSERT_MESSAGES = `INSERT INTO messages (id, conversation_id, seq, sender_id, message_id, content, created_at, reply_to)
  SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[])`
const MOVE_MEMBERS = `UPDATE conversation_members AS m SET last_activity_at = v.at
  FROM unnest($1::text[], $2::bigint[]) AS v(id, at)
  WHERE m.conversation_id = v.id COLLATE "C" AND m.last_activity_at < v.at`

const BY_ID = `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE id = $1`
const BY_IDS = `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE id = ANY($1::text[])`
// The message's row is locked first, then its conversation's (recordChange): a batch locks only
// conversations, so no two transactions wait on each other in a cycle.
const EDIT = `UPDATE messages SET content = $2, edited_at = $3 WHERE id = $1 AND deleted_at IS NULL AND content <> $2 RETURNING ${MESSAGE_COLUMNS}`
const ERASE = `UPDATE messages SET content = '', deleted_at = $2, reactions = NULL WHERE id = $1 AND deleted_at IS NULL RETURNING ${MESSAGE_COLUMNS}`
const ERASE_REACTIONS = 'DELETE FROM reactions WHERE message_id = $1'
// Locks the message (a deletion waits, or is waited for), then writes its reactions.
const REACTABLE = 'SELECT id FROM messages WHERE id = $1 AND deleted_at IS NULL FOR UPDATE'
const ADD_REACTION = 'INSERT INTO reactions (message_id, emoji, user_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1'
const REMOVE_REACTION = 'DELETE FROM reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3 RETURNING 1'
const REACTIONS_OF = 'SELECT emoji, user_id AS "userId" FROM reactions WHERE message_id = $1 ORDER BY created_at, user_id'
const SET_REACTIONS = `UPDATE messages SET reactions = $2 WHERE id = $1 RETURNING ${MESSAGE_COLUMNS}`

/** One prepared statement in the transaction, through the client observePostgres times. */
const run = <Row>(tx: Tx, text: string, params: unknown[]) => tx.unsafe<Row[]>(text, params as never[], { prepare: true })

// A page of history, over $1 conversation_id, $2 after, $3 before and $4 limit. `beyond` is the
// seq of the first message past the page (the limit+1-th from the end it is taken from), or NULL
// when the range holds no more than the page, so it is also has_more; each part is a range of the
// (conversation_id, seq) index, as on SQLite.
const RANGE = 'conversation_id = $1 AND seq > $2::bigint AND seq < $3::bigint'
const beyond = (order: 'DESC' | 'ASC') => `(SELECT seq FROM messages WHERE ${RANGE} ORDER BY seq ${order} LIMIT 1 OFFSET $4::bigint)`
const pageSql = (bounds: string, order: 'DESC' | 'ASC') =>
  `SELECT ${MESSAGE_COLUMNS}, ${beyond(order)} IS NOT NULL AS "hasMore" FROM messages WHERE conversation_id = $1 AND ${bounds} ORDER BY seq`
const PAGE: Record<PageRange['from'], string> = {
  newest: pageSql(`seq > coalesce(${beyond('DESC')}, $2::bigint) AND seq < $3::bigint`, 'DESC'),
  oldest: pageSql(`seq > $2::bigint AND seq < coalesce(${beyond('ASC')}, $3::bigint)`, 'ASC'),
}

/**
 * The PostgreSQL message store. Several server processes may write the same conversation at once,
 * so a batch (one transaction, see writer.ts) first locks the counter rows of its conversations,
 * in id order: every batch on every node takes them in the same order, so none waits on another
 * in a cycle (no deadlocks), and each conversation's seq is handed out by one transaction at a
 * time, in commit order, without gaps. With the rows locked, a (sender, message_id) already
 * stored by a committed transaction is seen (READ COMMITTED reads afresh per statement) and stores
 * nothing; a replay racing for another conversation meets the unique index instead, which fails
 * the batch, and each job is then tried alone, where it finds the stored one.
 */
export function postgresMessageStore(db: PostgresDb): MessageStore {
  /** Per conversation, the second its member rows were last moved to by this process (see writeBatch). */
  const markedAt = new Map<string, number>()
  const MAX_MARKED = 10_000

  async function commit(jobs: readonly WriteJob[], retried = false): Promise<WriteOutcome[]> {
    try {
      let marked = new Map<string, number>()
      const outcomes = await db.$client.begin(async (tx) => {
        const written = await writeBatch(tx, jobs)
        marked = await markActive(tx, written)
        return written
      })
      for (const [conversationId, at] of marked) rememberBounded(markedAt, conversationId, at, MAX_MARKED)
      return outcomes
    } catch (error) {
      // One job that met the unique (message_id, sender_id) index: the same key, for another
      // conversation, was being stored by another process, which has committed by now. Tried once
      // more, it finds that message and answers as a reuse (a conflict), not as a failure.
      if (jobs.length === 1 && !retried && (driverError(error) as { code?: unknown }).code === UNIQUE_VIOLATION) return commit(jobs, true)
      if (jobs.length === 1 || storageUnavailable(error)) return jobs.map(() => failedOutcome(error))
      const outcomes: WriteOutcome[] = []
      for (const job of jobs) outcomes.push(...(await commit([job])))
      return outcomes
    }
  }

  async function writeBatch(tx: Tx, jobs: readonly WriteJob[]): Promise<WriteOutcome[]> {
    const conversationIds = [...new Set(jobs.map((j) => j.conversationId))].sort()
    // Planned for this batch's values, not by a generic plan made while the tables were small,
    // which would keep scanning them whole once they have grown (the durable sends bench fell to a
    // half). Sent with the lock, in one round trip.
    await Promise.all([tx.unsafe(CUSTOM_PLANS), run(tx, LOCK_COUNTERS, [conversationIds])])
    const stored = await run<MessageRow>(tx, STORED, [jobs.map((j) => j.senderId), jobs.map((j) => j.messageId)])
    const byKey = new Map<string, MessageRow>()
    for (const row of stored) byKey.set(`${row.senderId}\n${row.messageId}`, row)

    // Which jobs store a new message; a repeat of a key, stored or earlier in this batch, stores nothing.
    const outcomes: WriteOutcome[] = []
    const fresh: Array<{ row: MessageRow; outcome: { eventSeq: number } }> = []
    const counts = new Map<string, { count: number; at: number }>()
    for (const job of jobs) {
      const key = `${job.senderId}\n${job.messageId}`
      const existing = byKey.get(key)
      if (existing) {
        outcomes.push(isRetryOf(existing, job.conversationId, job.content) ? { kind: 'stored', row: existing, created: false } : { kind: 'conflict' })
        continue
      }
      const row: MessageRow = { ...job, id: newId(), seq: 0, editedAt: null, deletedAt: null, reactions: null }
      byKey.set(key, row)
      const outcome = { kind: 'stored' as const, row, created: true as const, eventSeq: 0 }
      fresh.push({ row, outcome })
      const counted = counts.get(job.conversationId)
      counts.set(job.conversationId, { count: (counted?.count ?? 0) + 1, at: job.createdAt })
      outcomes.push(outcome)
    }
    if (fresh.length === 0) return outcomes

    const advanced = await run<{ id: string; lastSeq: number; lastEventSeq: number }>(tx, ADVANCE_COUNTERS, [
      [...counts.keys()],
      [...counts.values()].map((c) => c.count),
      [...counts.values()].map((c) => c.at),
    ])
    // Each conversation's new messages take the numbers after its previous last_seq and
    // last_event_seq, in batch order.
    const next = new Map<string, { seq: number; eventSeq: number }>()
    for (const { id, lastSeq, lastEventSeq } of advanced) {
      const { count } = counts.get(id)!
      next.set(id, { seq: lastSeq - count + 1, eventSeq: lastEventSeq - count + 1 })
    }
    for (const { row, outcome } of fresh) {
      const numbers = next.get(row.conversationId)
      if (numbers === undefined) throw new Error(`conversation ${row.conversationId} does not exist`)
      row.seq = numbers.seq++
      outcome.eventSeq = numbers.eventSeq++
    }
    const rows = fresh.map((f) => f.row)
    await run(tx, INSERT_MESSAGES, [
      rows.map((m) => m.id),
      rows.map((m) => m.conversationId),
      rows.map((m) => m.seq),
      rows.map((m) => m.senderId),
      rows.map((m) => m.messageId),
      rows.map((m) => m.content),
      rows.map((m) => m.createdAt),
      rows.map((m) => m.replyTo),
    ])
    return outcomes
  }

  /**
   * Moves each conversation the batch stored messages in to the second of its newest message on
   * every member's row (the order of each member's list), at most once per conversation and
   * second by this process; rows already there are left alone, and activity never goes back.
   */
  async function markActive(tx: Tx, outcomes: readonly WriteOutcome[]): Promise<Map<string, number>> {
    const newest = new Map<string, number>()
    for (const outcome of outcomes) {
      if (outcome.kind !== 'stored' || !outcome.created) continue
      const { conversationId, createdAt } = outcome.row
      newest.set(conversationId, Math.max(newest.get(conversationId) ?? 0, wholeSecond(createdAt)))
    }
    for (const [conversationId, at] of newest) if ((markedAt.get(conversationId) ?? -1) >= at) newest.delete(conversationId)
    if (newest.size === 0) return newest
    await run(tx, MOVE_MEMBERS, [[...newest.keys()], [...newest.values()]])
    return newest
  }

  async function page({ conversationId, from, after, before, limit }: PageRange): Promise<{ rows: MessageRow[]; hasMore: boolean }> {
    // Prepared once per connection (postgres.js names it by its text): a page is the hot read.
    const rows = await db.$client.unsafe<Array<MessageRow & { hasMore: boolean }>>(PAGE[from], [conversationId, after, before, limit], { prepare: true })
    return { rows: rows.map(({ hasMore: _, ...row }) => row), hasMore: rows[0]?.hasMore === true }
  }

  /** An edit or a deletion and its change, in one transaction (MessageStore.change). */
  async function change(input: MessageChangeInput): Promise<{ row: MessageRow; eventSeq: number } | null> {
    return db.$client.begin(async (tx) => {
      const [row] =
        input.type === 'message_edited'
          ? await run<MessageRow>(tx, EDIT, [input.id, input.content, input.at])
          : await run<MessageRow>(tx, ERASE, [input.id, input.at])
      if (!row) return null
      if (input.type === 'message_deleted') await run(tx, ERASE_REACTIONS, [input.id])
      const eventSeq = await recordChange(tx, { conversationId: row.conversationId, type: input.type, messageId: row.id, userId: input.userId, data: null, createdAt: input.at })
      return { row, eventSeq }
    })
  }

  /** A reaction added or taken back, and its change, in one transaction (MessageStore.react). */
  async function react({ id, emoji, userId, added, at }: ReactionInput): Promise<{ row: MessageRow; eventSeq: number } | null> {
    return db.$client.begin(async (tx) => {
      if ((await run(tx, REACTABLE, [id])).length === 0) return null
      const changed = added ? await run(tx, ADD_REACTION, [id, emoji, userId, at]) : await run(tx, REMOVE_REACTION, [id, emoji, userId])
      if (changed.length === 0) return null
      const reactions = reactionsJson(await run<{ emoji: string; userId: string }>(tx, REACTIONS_OF, [id]))
      const [row] = await run<MessageRow>(tx, SET_REACTIONS, [id, reactions])
      const eventSeq = await recordChange(tx, { conversationId: row!.conversationId, type: 'reaction', messageId: id, userId, data: JSON.stringify({ emoji, added }), createdAt: at })
      return { row: row!, eventSeq }
    })
  }

  return {
    commit,
    page,
    change,
    react,
    async byId(id) {
      const [row] = await db.$client.unsafe<MessageRow[]>(BY_ID, [id], { prepare: true })
      return row
    },
    async byIds(ids) {
      return ids.length === 0 ? [] : db.$client.unsafe<MessageRow[]>(BY_IDS, [ids as string[]], { prepare: true })
    },
    async pageJson(range) {
      const { rows, hasMore } = await page(range)
      return JSON.stringify({ messages: rows.map(toMessage), has_more: hasMore })
    },
    async exportPage(range) {
      const { rows, hasMore } = await page({ ...range, from: 'oldest' })
      let ndjson = ''
      for (const row of rows) ndjson += `${JSON.stringify(toMessage(row))}\n`
      return { ndjson, count: rows.length, lastSeq: rows.at(-1)?.seq ?? range.after, hasMore }
    },
  }
}
