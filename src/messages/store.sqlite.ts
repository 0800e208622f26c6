import type { Statement } from 'bun:sqlite'
import { and, Column, eq, lt, sql } from 'drizzle-orm'
import { perDatabase, type Db } from '../db/client'
import { storageUnavailable } from '../db/storage'
import { recordChange } from '../conversations/store.sqlite'
import { conversationMembers, conversations, messages } from '../db/schema'
import { rememberBounded } from '../shared/bounded'
import { newId } from '../shared/ids'
import { wholeSecond } from '../shared/time'
import { MESSAGE_FIELDS, TIME_FIELDS } from './model'
import { failedOutcome, isRetryOf, reactionsJson, type MessageChangeInput, type MessageRow, type MessageStore, type PageRange, type ReactionInput, type WriteJob, type WriteOutcome } from './store'

/**
 * The SQLite message store. commitBatch is shared by the inline writer (the default, on the event
 * loop) and the worker writer (MESSAGE_WRITER=worker, store.sqlite-worker.ts): plain data in,
 * plain data out, so a batch and its outcomes cross a thread boundary as they are.
 */

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
    if (jobs.length === 1 || storageUnavailable(error)) return jobs.map(() => failedOutcome(error))
    return jobs.flatMap((job) => commitBatch(db, [job]))
  }
}

/** One message inside the batch's transaction; a refusal is returned before anything is written. */
function write(db: Db, { senderId, conversationId, messageId, content, createdAt, replyTo }: WriteJob): WriteOutcome {
  const statements = statementsFor(db)
  const existing = statements.existing.get({ senderId, messageId })
  if (existing) {
    if (!isRetryOf(existing, conversationId, content)) return { kind: 'conflict' }
    return { kind: 'stored', row: existing, created: false }
  }
  const { seq, eventSeq } = statements.nextSeq.get({ conversationId, createdAt })!
  const row: MessageRow = { id: newId(), conversationId, seq, senderId, messageId, content, createdAt, editedAt: null, deletedAt: null, replyTo, reactions: null }
  statements.insert.run(row)
  return { kind: 'stored', row, created: true, eventSeq }
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
    .set({ lastSeq: sql`${conversations.lastSeq} + 1`, lastEventSeq: sql`${conversations.lastEventSeq} + 1`, lastMessageAt: sql`${sql.placeholder('createdAt')}` })
    .where(eq(conversations.id, sql.placeholder('conversationId')))
    .returning({ seq: conversations.lastSeq, eventSeq: conversations.lastEventSeq })
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
      replyTo: sql.placeholder('replyTo'),
    })
    .prepare(),
}))

// The page, in SQL, over $conversationId, $after, $before and $limit. `beyond` is the seq of the
// first message past the page (the limit+1-th from the end the page is taken from), or NULL when
// the range holds no more than the page: so it is also has_more. The page is then the range cut at
// `beyond`, read oldest first, so neither statement reverses or sorts anything, and each part is a
// range search of the (conversation_id, seq) index (tests/messages/query-plan.test.ts).
const RANGE = 'conversation_id = $conversationId AND seq > $after AND seq < $before'
const beyond = (from: From) => `(SELECT seq FROM messages WHERE ${RANGE} ORDER BY seq ${from === 'newest' ? 'DESC' : 'ASC'} LIMIT 1 OFFSET $limit)`
const page = (from: From, columns: string) =>
  `SELECT ${columns} FROM messages WHERE conversation_id = $conversationId AND ` +
  (from === 'newest' ? `seq > coalesce(${beyond(from)}, $after) AND seq < $before` : `seq > $after AND seq < coalesce(${beyond(from)}, $before)`) +
  ` ORDER BY seq`

/** A stored message's columns, named as MessageRow's fields. */
const MESSAGE_COLUMNS = (Object.keys(messages) as Array<keyof typeof messages>)
  .filter((key) => (messages[key] as unknown) instanceof Column)
  .map((key) => `${(messages[key] as Column).name} AS ${key}`)
  .join(', ')

type PageRow = MessageRow & { hasMore: 0 | 1 }
type From = PageRange['from']

// An empty page has no row to carry has_more, and needs none: the range is empty, so nothing is beyond.
const objectPage = (db: Db, from: From): Statement<PageRow> =>
  db.$client.prepare(
    page(
      from,
      `${MESSAGE_COLUMNS}, ${beyond(from)} IS NOT NULL AS hasMore`,
    ),
  )

// The same page as the REST body, built by SQLite in one string: no object per message, and no
// second pass over them (Drizzle's row mapping, toMessage, the response schema's normalisation and
// JSON.stringify each walked all 50). json_object escapes
// text exactly as JSON.stringify does, and created_at is formatted as shared/time.ts iso() formats it
// for years 0000–9999 (tests/messages/history.test.ts compares the two pages for every shape, with
// awkward content and timestamps). datetime(…, 'subsec') rather than strftime('…%f'): the same
// text, far cheaper (README, Performance).
// json_group_array takes the rows in the order the subquery yields them: oldest first.
const isoOf = (column: string) => `replace(datetime(${column} / 1000.0, 'unixepoch', 'subsec'), ' ', 'T') || 'Z'`
const jsonValue = (stored: keyof MessageRow) => {
  const column = messages[stored].name
  if (stored === 'createdAt') return isoOf(column)
  if (stored === 'reactions') return `json(coalesce(${column}, '[]'))`
  return TIME_FIELDS.has(stored) ? `iif(${column} IS NULL, NULL, ${isoOf(column)})` : column
}
const MESSAGE_JSON = `json_object(${MESSAGE_FIELDS.map(([field, stored]) => `'${field}', ${jsonValue(stored)}`).join(', ')})`
const jsonPage = (db: Db, from: From): Statement<{ page: string }> =>
  db.$client.prepare(
    `SELECT '{"messages":' || (SELECT json_group_array(${MESSAGE_JSON}) FROM (${page(from, '*')})) || ` +
      `',"has_more":' || iif(${beyond(from)} IS NULL, 'false', 'true') || '}' AS page`,
  )

// An export's page as NDJSON, built by SQLite as the history page's JSON is: each message's JSON
// and a newline, in the order the page yields them (oldest first), as json_group_array takes them
// above (an ORDER BY in group_concat would sort the page again in a temporary b-tree), with what
// the next page needs. Over no rows: one row with NULL lines and lastSeq, and count 0.
type NdjsonRow = { lines: string | null; count: number; lastSeq: number | null; hasMore: 0 | 1 }
const ndjsonPage = (db: Db): Statement<NdjsonRow> =>
  db.$client.prepare(
    `SELECT group_concat(${MESSAGE_JSON} || char(10), '') AS lines, count(*) AS count, max(seq) AS lastSeq, ` +
      `${beyond('oldest')} IS NOT NULL AS hasMore FROM (${page('oldest', '*')})`,
  )

const pageStatements = perDatabase((db) => ({
  objects: { newest: objectPage(db, 'newest'), oldest: objectPage(db, 'oldest') },
  json: { newest: jsonPage(db, 'newest'), oldest: jsonPage(db, 'oldest') },
  ndjson: ndjsonPage(db),
}))


const changeStatements = perDatabase((db) => ({
  byId: db.$client.prepare<MessageRow, { id: string }>(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE id = $id`),
  byIds: db.$client.prepare<MessageRow, { ids: string }>(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE id IN (SELECT value FROM json_each($ids))`),
  edit: db.$client.prepare<MessageRow, { id: string; content: string; at: number }>(
    `UPDATE messages SET content = $content, edited_at = $at WHERE id = $id AND deleted_at IS NULL AND content <> $content RETURNING ${MESSAGE_COLUMNS}`,
  ),
  erase: db.$client.prepare<MessageRow, { id: string; at: number }>(
    `UPDATE messages SET content = '', deleted_at = $at, reactions = NULL WHERE id = $id AND deleted_at IS NULL RETURNING ${MESSAGE_COLUMNS}`,
  ),
  eraseReactions: db.$client.prepare<never, { id: string }>('DELETE FROM reactions WHERE message_id = $id'),
  reactable: db.$client.prepare<{ id: string }, { id: string }>('SELECT id FROM messages WHERE id = $id AND deleted_at IS NULL'),
  addReaction: db.$client.prepare<never, { id: string; emoji: string; userId: string; at: number }>(
    'INSERT INTO reactions (message_id, emoji, user_id, created_at) VALUES ($id, $emoji, $userId, $at) ON CONFLICT DO NOTHING',
  ),
  removeReaction: db.$client.prepare<never, { id: string; emoji: string; userId: string }>('DELETE FROM reactions WHERE message_id = $id AND emoji = $emoji AND user_id = $userId'),
  reactionsOf: db.$client.prepare<{ emoji: string; userId: string }, { id: string }>(
    'SELECT emoji, user_id AS userId FROM reactions WHERE message_id = $id ORDER BY created_at, user_id',
  ),
  setReactions: db.$client.prepare<MessageRow, { id: string; reactions: string | null }>(`UPDATE messages SET reactions = $reactions WHERE id = $id RETURNING ${MESSAGE_COLUMNS}`),
}))

/** A reaction added or taken back, and its change, in one transaction (MessageStore.react). */
function react(db: Db, { id, emoji, userId, added, at }: ReactionInput): { row: MessageRow; eventSeq: number } | null {
  const statements = changeStatements(db)
  return db.transaction(
    () => {
      if (!statements.reactable.get({ id })) return null
      const { changes } = added ? statements.addReaction.run({ id, emoji, userId, at }) : statements.removeReaction.run({ id, emoji, userId })
      if (changes === 0) return null
      const row = statements.setReactions.get({ id, reactions: reactionsJson(statements.reactionsOf.all({ id })) })!
      const eventSeq = recordChange(db, { conversationId: row.conversationId, type: 'reaction', messageId: id, userId, data: JSON.stringify({ emoji, added }), createdAt: at })
      return { row, eventSeq }
    },
    { behavior: 'immediate' },
  )
}

/** An edit or a deletion and its change, in one transaction (MessageStore.change). */
function changeMessage(db: Db, input: MessageChangeInput): { row: MessageRow; eventSeq: number } | null {
  const statements = changeStatements(db)
  const changed = db.transaction(
    () => {
      const row = input.type === 'message_edited' ? statements.edit.get({ id: input.id, content: input.content, at: input.at }) : statements.erase.get({ id: input.id, at: input.at })
      if (!row) return null
      if (input.type === 'message_deleted') statements.eraseReactions.run({ id: input.id })
      const eventSeq = recordChange(db, { conversationId: row.conversationId, type: input.type, messageId: row.id, userId: input.userId, data: null, createdAt: input.at })
      return { row, eventSeq }
    },
    { behavior: 'immediate' },
  )
  // Its text is gone from the database's pages (secure_delete); the write-ahead log may still hold
  // the pages it was in, until it is checkpointed into the file and emptied.
  if (changed && input.type === 'message_deleted') db.$client.run('PRAGMA wal_checkpoint(TRUNCATE)')
  return changed
}

/** The messages store of a SQLite database; `commit` is the inline commitBatch or the worker's. */
export function sqliteMessageStore(db: Db, commit: MessageStore['commit'] = (jobs) => commitBatch(db, jobs)): MessageStore {
  const statements = pageStatements(db)
  const lookups = changeStatements(db)
  return {
    commit,
    async byId(id) {
      return lookups.byId.get({ id }) ?? undefined
    },
    async byIds(ids) {
      return ids.length === 0 ? [] : lookups.byIds.all({ ids: JSON.stringify(ids) })
    },
    async change(input) {
      return changeMessage(db, input)
    },
    async react(input) {
      return react(db, input)
    },
    async page({ from, ...params }: PageRange) {
      const rows = statements.objects[from].all(params)
      return { rows, hasMore: rows[0]?.hasMore === 1 }
    },
    async pageJson({ from, ...params }: PageRange) {
      return statements.json[from].get(params)!.page
    },
    async exportPage(range) {
      const { lines, count, lastSeq, hasMore } = statements.ndjson.get(range)!
      return { ndjson: lines ?? '', count, lastSeq: lastSeq ?? range.after, hasMore: hasMore === 1 }
    },
  }
}
