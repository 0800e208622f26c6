import { t } from 'elysia'
import type { MessageRow } from './store'
import { iso } from '../shared/time'

export const MAX_CONTENT_CHARACTERS = 4000

const MessageId = t.String({
  pattern: '^[\\x21-\\x7E]{1,128}$',
  error: 'must be 1–128 visible ASCII characters, e.g. a UUID',
  description: "The client's idempotency key: a retry with the same key stores nothing new. Unique per sender; a time-ordered key (a UUIDv7) is the cheapest to store",
  examples: ['019ab5f2-6c1e-7d3a-9f40-2b8e5c7d1a63'],
})

export const PostMessage = t.Object({
  message_id: MessageId,
  conversation_id: t.String({ minLength: 1, maxLength: 64 }),
  content: t.String({ description: `1–${MAX_CONTENT_CHARACTERS} characters, not only whitespace` }),
  sender_id: t.Optional(t.String({ description: 'If given, must be the caller' })),
})
export type PostMessage = typeof PostMessage.static

export const Message = t.Object({
  id: t.String(),
  message_id: t.String(),
  sender_id: t.String(),
  conversation_id: t.String(),
  content: t.String(),
  created_at: t.String({ format: 'date-time' }),
  seq: t.Integer({ description: 'Position in the conversation: 1, 2, 3, … in commit order' }),
})
export type Message = typeof Message.static

export const HISTORY_DEFAULT_LIMIT = 50
const HISTORY_MAX_LIMIT = 200

export const HistoryQuery = t.Object({
  limit: t.Optional(
    t.Integer({ title: 'limit', minimum: 1, maximum: HISTORY_MAX_LIMIT, default: HISTORY_DEFAULT_LIMIT, error: `must be a whole number from 1 to ${HISTORY_MAX_LIMIT}` }),
  ),
  before: t.Optional(t.Integer({ title: 'before', minimum: 1, error: 'must be a seq: a whole number from 1', description: 'Only messages with a smaller seq (page back)' })),
  after: t.Optional(t.Integer({ title: 'after', minimum: 0, error: 'must be a seq: a whole number from 0', description: 'Only messages with a larger seq (page forward, catch up)' })),
})
export type HistoryQuery = typeof HistoryQuery.static

export const MessagePage = t.Object({
  messages: t.Array(Message, { description: 'Oldest first' }),
  has_more: t.Boolean({ description: 'Whether more messages lie beyond this page in the direction paged' }),
})
export type MessagePage = typeof MessagePage.static

/**
 * A message's JSON, field by field, in order, with the stored value each comes from: the one
 * definition that toMessage() follows in JavaScript and the SQLite store follows in SQL, for its
 * history pages built as JSON by the database (store.sqlite.ts). `createdAt` is epoch ms, shown as
 * iso() writes it.
 */
export const MESSAGE_FIELDS = [
  ['id', 'id'],
  ['message_id', 'messageId'],
  ['sender_id', 'senderId'],
  ['conversation_id', 'conversationId'],
  ['content', 'content'],
  ['created_at', 'createdAt'],
  ['seq', 'seq'],
] as const satisfies ReadonlyArray<readonly [keyof Message, keyof MessageRow]>

export function toMessage(row: MessageRow): Message {
  const message: Record<string, unknown> = {}
  for (const [field, stored] of MESSAGE_FIELDS) message[field] = stored === 'createdAt' ? iso(row.createdAt) : row[stored]
  return message as Message
}
