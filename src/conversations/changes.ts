import { t } from 'elysia'
import type { Store } from '../db/store'
import type { Logger } from '../observability/logger'
import { Message, toMessage } from '../messages/model'
import { DomainError } from '../shared/errors'
import { validator } from '../shared/validation'
import type { User } from '../users/model'
import { requireMember } from './service'
import type { ChangeRow, StreamBase } from './store'

/**
 * A conversation's change stream: every change to it, numbered by `event_seq` 1, 2, 3, … without
 * gaps, in commit order. Each change is the object its live WebSocket frame carries, the same
 * whether it is sent live or replayed (GET /conversations/{id}/events, the `resume` frame).
 */
const changeBase = { conversation_id: t.String(), event_seq: t.Integer({ description: "The change's number in its conversation's change stream" }) }

const MessageChange = t.Object({ type: t.Literal('message'), ...changeBase, message: Message }, { description: 'A message was sent; replayed, the message as it is now' })
const MessageEdited = t.Object({ type: t.Literal('message_edited'), ...changeBase, message: Message }, { description: 'Its sender changed a message; the message as it is now' })
const MessageDeleted = t.Object(
  { type: t.Literal('message_deleted'), ...changeBase, message: Message },
  { description: 'A message was deleted: it keeps its seq, with deleted_at set and empty content' },
)

const Reaction = t.Object(
  { type: t.Literal('reaction'), ...changeBase, message_id: t.String(), emoji: t.String(), user_id: t.String(), added: t.Boolean({ description: 'true: reacted; false: took it back' }) },
  { description: "Someone reacted to a message, or took their reaction back (the message's `reactions` show the result)" },
)

const byWhom = { by: t.String({ description: 'The user who made the change' }) }
const MemberAdded = t.Object({ type: t.Literal('member_added'), ...changeBase, user_id: t.String({ description: 'The new member' }), ...byWhom }, { description: 'Someone was added to a group' })
const MemberRemoved = t.Object(
  { type: t.Literal('member_removed'), ...changeBase, user_id: t.String({ description: 'Who is no longer a member' }), ...byWhom },
  { description: 'Someone left a group (by = user_id) or was removed by its creator' },
)
const ConversationUpdated = t.Object({ type: t.Literal('conversation_updated'), ...changeBase, title: t.String(), ...byWhom }, { description: 'A group was renamed' })

const Read = t.Object(
  { type: t.Literal('read'), ...changeBase, user_id: t.String({ description: 'The member who read' }), seq: t.Integer({ description: 'Their read position now: the seq of the newest message they have read' }) },
  { description: "A member's read position moved forward (POST /conversations/{id}/read): their other devices clear what is unread up to it, the others see a receipt" },
)

export const Change = t.Union([MessageChange, MessageEdited, MessageDeleted, Reaction, MemberAdded, MemberRemoved, ConversationUpdated, Read])
export type Change = typeof Change.static

export const CHANGES_DEFAULT_LIMIT = 100
const CHANGES_MAX_LIMIT = 500

export const ChangesQuery = t.Object({
  after: t.Optional(t.Integer({ title: 'after', minimum: 0, default: 0, error: 'must be an event_seq: a whole number from 0', description: 'Only changes with a larger event_seq' })),
  limit: t.Optional(
    t.Integer({ title: 'limit', minimum: 1, maximum: CHANGES_MAX_LIMIT, default: CHANGES_DEFAULT_LIMIT, error: `must be a whole number from 1 to ${CHANGES_MAX_LIMIT}` }),
  ),
})

export const ChangePage = t.Object({
  events: t.Array(Change, { description: 'Oldest first' }),
  has_more: t.Boolean({ description: 'Whether more changes follow this page' }),
})
export type ChangePage = typeof ChangePage.static

const checkQuery = validator(ChangesQuery)

/** A change row as the change it records, its message (if it concerns one) as it is now. */
function fromRow(conversationId: string, row: ChangeRow, messages: ReadonlyMap<string, Message>): Change {
  const base = { conversation_id: conversationId, event_seq: row.eventSeq }
  switch (row.type) {
    case 'message_edited':
    case 'message_deleted': {
      const message = messages.get(row.messageId ?? '')
      if (!message) throw new Error(`change ${row.eventSeq} of conversation ${conversationId} names a message that is not stored`)
      return { type: row.type, ...base, message }
    }
    case 'reaction': {
      const { emoji, added } = JSON.parse(row.data ?? '{}') as { emoji: string; added: boolean }
      return { type: 'reaction', ...base, message_id: row.messageId!, emoji, user_id: row.userId!, added }
    }
    case 'member_added':
    case 'member_removed': {
      const { user_id } = JSON.parse(row.data ?? '{}') as { user_id: string }
      return { type: row.type, ...base, user_id, by: row.userId! }
    }
    case 'conversation_updated': {
      const { title } = JSON.parse(row.data ?? '{}') as { title: string }
      return { type: 'conversation_updated', ...base, title, by: row.userId! }
    }
    case 'read': {
      const { seq } = JSON.parse(row.data ?? '{}') as { seq: number }
      return { type: 'read', ...base, user_id: row.userId!, seq }
    }
    default:
      throw new Error(`change ${row.eventSeq} of conversation ${conversationId} has an unknown type ${JSON.stringify(row.type)}`)
  }
}

/**
 * The changes with `after` < event_seq < `before`, oldest first, at most `limit`; 'pruned' when
 * some of them are past retention.
 *
 * A message being sent has no change row: its event_seq follows from its seq. Each change row
 * records the conversation's last_seq when it happened (after_seq), and the messages after it
 * take the numbers after its own, until the next row. So the stream after `after` is the change
 * rows after it merged with the messages after the seq that `after` stood at. Both are read up to
 * where the conversation stood when the read began (its last_seq and last_event_seq then): every
 * number below those is committed, so the merge never meets a change it has not read.
 */
export async function changesBetween(store: Store, conversationId: string, after: number, before: number, limit: number): Promise<Change[] | 'pruned'> {
  const now = await store.conversations.byId(conversationId)
  if (!now) return []
  const upTo = Math.min(before - 1, now.lastEventSeq)
  if (upTo <= after) return []
  const stream = await store.conversations.changes(conversationId, after, upTo, limit)
  if (stream === 'pruned') return 'pruned'
  let base: StreamBase = stream.base
  const fromSeq = base.afterSeq + (after - base.eventSeq)
  const [{ rows: messages }, concerned] = await Promise.all([
    store.messages.page({ conversationId, from: 'oldest', after: fromSeq, before: now.lastSeq + 1, limit }),
    store.messages.byIds([...new Set(stream.rows.flatMap((row) => (row.messageId ? [row.messageId] : [])))]),
  ])
  const byId = new Map(concerned.map((row) => [row.id, toMessage(row)]))
  const changes: Change[] = []
  let r = 0
  let m = 0
  while (changes.length < limit) {
    const row = stream.rows[r]
    const message = messages[m]
    // A change row comes before the messages sent after it: those with a seq above its after_seq.
    if (row && (!message || row.afterSeq < message.seq)) {
      changes.push(fromRow(conversationId, row, byId))
      base = row
      r++
      continue
    }
    if (!message) break
    const eventSeq = base.eventSeq + (message.seq - base.afterSeq)
    if (eventSeq > upTo) break
    changes.push({ type: 'message', conversation_id: conversationId, event_seq: eventSeq, message: toMessage(message) })
    m++
  }
  return changes
}

/** GET /conversations/{id}/events: a page of the change stream, for members. */
export async function changePage(store: Store, actor: User, conversationId: string, query: unknown): Promise<ChangePage> {
  const { after = 0, limit = CHANGES_DEFAULT_LIMIT } = checkQuery(query)
  await requireMember(store, actor, conversationId)
  const changes = await changesBetween(store, conversationId, after, Number.MAX_SAFE_INTEGER, limit)
  if (changes === 'pruned') throw new DomainError(410, 'resync_required', 'Changes after this event_seq are past retention: load the conversation again (its history), then follow it from its last_event_seq')
  const last = changes.at(-1)?.event_seq ?? after
  const stream = await store.conversations.byId(conversationId)
  return { events: changes, has_more: stream !== undefined && last < stream.lastEventSeq }
}

const DAY_MS = 86_400_000
const PRUNE_EVERY_MS = 3_600_000

/** Removes the changes older than EVENT_RETENTION_DAYS (see ConversationStore.pruneChanges); how many went. */
export function pruneChanges(store: Store, retentionDays: number, now: number = Date.now()): Promise<number> {
  return store.conversations.pruneChanges(now - retentionDays * DAY_MS)
}

/**
 * Prunes at start-up and then hourly, on every node (pruning is idempotent). A failure is logged
 * and tried again at the next hour.
 */
export function startPruning(deps: { store: Store; config: { eventRetentionDays: number }; logger: Logger }): () => void {
  const prune = () =>
    pruneChanges(deps.store, deps.config.eventRetentionDays).then(
      (pruned) => {
        if (pruned > 0) deps.logger.info({ pruned, retention_days: deps.config.eventRetentionDays }, 'changes past retention pruned')
      },
      (error) => deps.logger.warn({ err: error }, 'pruning changes past retention failed'),
    )
  void prune()
  const timer = setInterval(prune, PRUNE_EVERY_MS).unref()
  return () => clearInterval(timer)
}
