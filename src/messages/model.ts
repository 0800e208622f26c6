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
  reply_to: t.Optional(t.Union([t.String({ maxLength: 128 }), t.Null()], { description: 'The `id` of a message of the same conversation this one answers' })),
})
export type PostMessage = typeof PostMessage.static

const graphemes = new Intl.Segmenter('en', { granularity: 'grapheme' })

/**
 * Whether a text is one emoji: a single grapheme (so a flag, a skin tone or a family of several
 * code points is one) that is pictographic, a flag (two regional indicators) or a keycap.
 */
export function isOneEmoji(text: string): boolean {
  if (text.length === 0 || text.length > 64) return false
  const [first, second] = graphemes.segment(text)
  if (!first || second) return false
  return /\p{Extended_Pictographic}/u.test(text) || /^\p{Regional_Indicator}{2}$/u.test(text) || /^[0-9#*]\uFE0F?\u20E3$/u.test(text)
}

export const EditMessage = t.Object({
  content: t.String({ description: `The new text: 1–${MAX_CONTENT_CHARACTERS} characters, not only whitespace` }),
})

export const Message = t.Object({
  id: t.String(),
  message_id: t.String(),
  sender_id: t.String(),
  conversation_id: t.String(),
  content: t.String(),
  created_at: t.String({ format: 'date-time' }),
  seq: t.Integer({ description: 'Position in the conversation: 1, 2, 3, … in commit order' }),
  edited_at: t.Union([t.String({ format: 'date-time' }), t.Null()], { description: 'When its sender last changed its content; null if never' }),
  deleted_at: t.Union([t.String({ format: 'date-time' }), t.Null()], { description: 'When it was deleted (its content is then empty); null if it is not' }),
  reply_to: t.Union([t.String(), t.Null()], { description: 'The id of the message it answers, in the same conversation; null if none' }),
  reactions: t.Array(t.Object({ emoji: t.String(), user_ids: t.Array(t.String(), { description: 'Who reacted with it, first first' }) }), {
    description: 'Each emoji reacted with, in the order it was first used',
  }),
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
 * history pages built as JSON by the database (store.sqlite.ts). Times are epoch ms (or null),
 * shown as iso() writes them.
 */
export const MESSAGE_FIELDS = [
  ['id', 'id'],
  ['message_id', 'messageId'],
  ['sender_id', 'senderId'],
  ['conversation_id', 'conversationId'],
  ['content', 'content'],
  ['created_at', 'createdAt'],
  ['seq', 'seq'],
  ['edited_at', 'editedAt'],
  ['deleted_at', 'deletedAt'],
  ['reply_to', 'replyTo'],
  ['reactions', 'reactions'],
] as const satisfies ReadonlyArray<readonly [keyof Message, keyof MessageRow]>

/** The stored values that are times. */
export const TIME_FIELDS: ReadonlySet<keyof MessageRow> = new Set(['createdAt', 'editedAt', 'deletedAt'])

export function toMessage(row: MessageRow): Message {
  const message: Record<string, unknown> = {}
  for (const [field, stored] of MESSAGE_FIELDS) {
    const value = row[stored]
    if (stored === 'reactions') message[field] = value === null ? [] : JSON.parse(value as string)
    else message[field] = TIME_FIELDS.has(stored) && value !== null ? iso(value as number) : value
  }
  return message as Message
}
