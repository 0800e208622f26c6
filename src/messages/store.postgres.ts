import { type SQL, sql } from 'drizzle-orm'
import type { PostgresDb } from '../db/postgres/connection'
import { messages } from '../db/postgres/schema'
import { storageUnavailable } from '../db/storage'
import { rememberBounded } from '../shared/bounded'
import { newId } from '../shared/ids'
import { wholeSecond } from '../shared/time'
import { toMessage } from './model'
import { failedOutcome, type MessageRow, type MessageStore, type PageRange, type WriteJob, type WriteOutcome } from './store'

type Tx = Parameters<Parameters<PostgresDb['transaction']>[0]>[0]

const list = (items: SQL[]) => sql.join(items, sql`, `)

const MESSAGE_COLUMNS = sql.raw(
  `id, conversation_id AS "conversationId", seq, sender_id AS "senderId", message_id AS "messageId", content, created_at AS "createdAt"`,
)

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

  async function commit(jobs: readonly WriteJob[]): Promise<WriteOutcome[]> {
    try {
      let marked = new Map<string, number>()
      const outcomes = await db.transaction(async (tx) => {
        const written = await writeBatch(tx, jobs)
        marked = await markActive(tx, written)
        return written
      })
      for (const [conversationId, at] of marked) rememberBounded(markedAt, conversationId, at, MAX_MARKED)
      return outcomes
    } catch (error) {
      if (jobs.length === 1 || storageUnavailable(error)) return jobs.map(() => failedOutcome(error))
      const outcomes: WriteOutcome[] = []
      for (const job of jobs) outcomes.push(...(await commit([job])))
      return outcomes
    }
  }

  async function writeBatch(tx: Tx, jobs: readonly WriteJob[]): Promise<WriteOutcome[]> {
    const conversationIds = [...new Set(jobs.map((j) => j.conversationId))].sort()
    await tx.execute(sql`SELECT id FROM conversations WHERE id IN (${list(conversationIds.map((id) => sql`${id}`))}) ORDER BY id FOR UPDATE`)
    const stored = await tx.execute<MessageRow>(
      sql`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE (sender_id, message_id) IN (${list(jobs.map((j) => sql`(${j.senderId}, ${j.messageId})`))})`,
    )
    const byKey = new Map<string, MessageRow>()
    for (const row of stored) byKey.set(`${row.senderId}\n${row.messageId}`, row)

    // Which jobs store a new message; a repeat of a key, stored or earlier in this batch, stores nothing.
    const outcomes: WriteOutcome[] = []
    const fresh: MessageRow[] = []
    const counts = new Map<string, { count: number; at: number }>()
    for (const job of jobs) {
      const key = `${job.senderId}\n${job.messageId}`
      const existing = byKey.get(key)
      if (existing) {
        const same = existing.conversationId === job.conversationId && existing.content === job.content
        outcomes.push(same ? { kind: 'stored', row: existing, created: false } : { kind: 'conflict' })
        continue
      }
      const row: MessageRow = { id: newId(), conversationId: job.conversationId, seq: 0, senderId: job.senderId, messageId: job.messageId, content: job.content, createdAt: job.createdAt }
      byKey.set(key, row)
      fresh.push(row)
      const counted = counts.get(job.conversationId)
      counts.set(job.conversationId, { count: (counted?.count ?? 0) + 1, at: job.createdAt })
      outcomes.push({ kind: 'stored', row, created: true })
    }
    if (fresh.length === 0) return outcomes

    const advanced = await tx.execute<{ id: string; lastSeq: number }>(sql`
      UPDATE conversations AS c SET last_seq = c.last_seq + v.count, last_message_at = v.at
      FROM (VALUES ${list([...counts].map(([id, { count, at }]) => sql`(${id}::text, ${count}::bigint, ${at}::bigint)`))}) AS v(id, count, at)
      WHERE c.id = v.id COLLATE "C"
      RETURNING c.id, c.last_seq AS "lastSeq"`)
    // Each conversation's new messages take the numbers after its previous last_seq, in batch order.
    const next = new Map<string, number>()
    for (const { id, lastSeq } of advanced) next.set(id, lastSeq - counts.get(id)!.count + 1)
    for (const row of fresh) {
      const seq = next.get(row.conversationId)
      if (seq === undefined) throw new Error(`conversation ${row.conversationId} does not exist`)
      row.seq = seq
      next.set(row.conversationId, seq + 1)
    }
    await tx.insert(messages).values(fresh)
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
    await tx.execute(sql`
      UPDATE conversation_members AS m SET last_activity_at = v.at
      FROM (VALUES ${list([...newest].map(([id, at]) => sql`(${id}::text, ${at}::bigint)`))}) AS v(id, at)
      WHERE m.conversation_id = v.id COLLATE "C" AND m.last_activity_at < v.at`)
    return newest
  }

  // The page: `beyond` is the seq of the first message past it (the limit+1-th from the end it is
  // taken from), or NULL when the range holds no more than the page, so it is also has_more; each
  // part is a range of the (conversation_id, seq) index, as on SQLite.
  function pageQuery({ conversationId, from, after, before, limit }: PageRange): SQL {
    const range = sql`conversation_id = ${conversationId} AND seq > ${after}::bigint AND seq < ${before}::bigint`
    const beyond = sql`(SELECT seq FROM messages WHERE ${range} ORDER BY seq ${sql.raw(from === 'newest' ? 'DESC' : 'ASC')} LIMIT 1 OFFSET ${limit}::bigint)`
    const bounds =
      from === 'newest'
        ? sql`seq > coalesce(${beyond}, ${after}::bigint) AND seq < ${before}::bigint`
        : sql`seq > ${after}::bigint AND seq < coalesce(${beyond}, ${before}::bigint)`
    return sql`SELECT ${MESSAGE_COLUMNS}, ${beyond} IS NOT NULL AS "hasMore" FROM messages WHERE conversation_id = ${conversationId} AND ${bounds} ORDER BY seq`
  }

  async function page(range: PageRange): Promise<{ rows: MessageRow[]; hasMore: boolean }> {
    const rows = [...(await db.execute<MessageRow & { hasMore: boolean }>(pageQuery(range)))]
    return { rows: rows.map(({ hasMore: _, ...row }) => row), hasMore: rows[0]?.hasMore === true }
  }

  return {
    commit,
    page,
    async pageJson(range) {
      const { rows, hasMore } = await page(range)
      return JSON.stringify({ messages: rows.map(toMessage), has_more: hasMore })
    },
  }
}
