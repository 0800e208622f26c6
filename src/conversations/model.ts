import { t } from 'elysia'
import type { User } from '../users/model'
import { displayName } from '../users/service'
import { iso } from '../shared/time'

export const MAX_TITLE_CHARACTERS = 100

export const CreateConversation = t.Object({
  title: t.Optional(
    t.Nullable(t.String({ description: `At most ${MAX_TITLE_CHARACTERS} characters; required for a group, ignored for a 1-on-1` }), {
      error: 'must be a string or null',
    }),
  ),
  member_ids: t.Array(t.String({ minLength: 1, maxLength: 64 }), {
    maxItems: 500,
    error: 'must be a list of at most 500 user ids',
    description: 'The other members (the caller is always one). Exactly one opens (or reuses) the 1-on-1 between the two, title or not, unless is_group is true.',
  }),
  is_group: t.Optional(
    t.Boolean({
      error: 'must be true or false',
      description: 'true: a group (with a title) even with only one other member. Left out: a group unless member_ids names exactly one other member.',
    }),
  ),
})
export type CreateConversation = typeof CreateConversation.static

export const AddMembers = t.Object({
  member_ids: t.Array(t.String({ minLength: 1, maxLength: 64 }), { minItems: 1, maxItems: 500, error: 'must be a list of 1 to 500 user ids' }),
})
export const RenameConversation = t.Object({
  title: t.String({ description: `The group's new title: at most ${MAX_TITLE_CHARACTERS} characters, not blank` }),
})

export const Conversation = t.Object({
  id: t.String(),
  title: t.Nullable(t.String()),
  members: t.Array(t.String(), { description: 'Member user ids, the creator included' }),
  is_group: t.Boolean(),
  member_count: t.Integer(),
  display_name: t.String({ description: "A group's title; for a 1-on-1, the other person's name" }),
  created_at: t.String({ format: 'date-time' }),
  last_message_at: t.Nullable(t.String({ format: 'date-time' })),
  last_seq: t.Integer({ description: 'The seq of the newest message; 0 when there is none' }),
  last_event_seq: t.Integer({ description: 'The event_seq of the newest change in its change stream (GET /conversations/{id}/events); 0 when there is none' }),
})
export type Conversation = typeof Conversation.static

export const LIST_DEFAULT_LIMIT = 50
export const LIST_MAX_LIMIT = 200
/**
 * A page of conversations stops before the member ids it carries would pass this many (it always
 * holds one conversation): every item keeps its whole member list, and a page's work stays bounded
 * whatever `limit` asks for and however large the groups on it are.
 */
export const LIST_MAX_MEMBERS = 5_000

export const ConversationListQuery = t.Object({
  limit: t.Optional(
    t.Integer({
      title: 'limit',
      minimum: 1,
      maximum: LIST_MAX_LIMIT,
      default: LIST_DEFAULT_LIMIT,
      error: `must be a whole number from 1 to ${LIST_MAX_LIMIT}`,
      description: `At most this many conversations (fewer when their members together pass ${LIST_MAX_MEMBERS.toLocaleString('en-US')})`,
    }),
  ),
  cursor: t.Optional(
    t.String({
      title: 'cursor',
      pattern: '^[A-Za-z0-9_-]{1,200}$',
      error: 'must be the next_cursor of an earlier page',
      description: 'The `next_cursor` of the previous page; without it, the first page',
    }),
  ),
})
export type ConversationListQuery = typeof ConversationListQuery.static

/** What one member has read of a conversation. */
const readPosition = {
  last_read_seq: t.Integer({ description: 'The seq of the newest message the caller has read (POST /conversations/{id}/read); it only moves forward' }),
  unread_count: t.Integer({ description: "How many messages after last_read_seq others sent, deleted ones excluded" }),
}

/** A conversation in the caller's list: with what they have read of it. */
export const ConversationListItem = t.Object({ ...Conversation.properties, ...readPosition })
export type ConversationListItem = typeof ConversationListItem.static

export const ConversationList = t.Object({
  conversations: t.Array(ConversationListItem, { description: 'Most recently active first' }),
  next_cursor: t.Nullable(t.String({ description: 'Pass as `cursor` for the next page; null on the last page' })),
})
export type ConversationList = typeof ConversationList.static

/** A conversation as stored, with its members: the same for every viewer. */
export type ConversationRecord = {
  id: string
  title: string | null
  isGroup: boolean
  createdAt: number
  lastSeq: number
  lastEventSeq: number
  lastMessageAt: number | null
  members: User[]
}

/** What one member has read of a conversation: the newest seq, and how many of others' messages came after it. */
export type ReadState = { lastReadSeq: number; unreadCount: number }

/** A conversation's reads as those who have it open see them: each member's read seq, and unread counts by user id. */
export type Reading = { reads: ReadonlyMap<string, number>; unread: ReadonlyMap<string, number> }

/** A page of a user's conversations, with what they have read of each, and where the next one starts (null: this is the last). */
export type ConversationPage = { conversations: Array<ConversationRecord & { read: ReadState }>; nextCursor: string | null }

export const MarkRead = t.Object({
  seq: t.Integer({
    minimum: 0,
    maximum: Number.MAX_SAFE_INTEGER,
    error: 'must be a seq: a whole number from 0',
    description: "The seq of the newest message read. A lower one than already recorded changes nothing; one past the conversation's newest message counts as its newest",
  }),
})

export const ReadPositions = t.Object({
  reads: t.Array(t.Object({ user_id: t.String(), seq: t.Integer({ description: 'The seq of the newest message they have read; 0 for none' }) }), {
    description: 'Every member, in the order they were added',
  }),
})
export type ReadPositions = typeof ReadPositions.static

/** How `viewerId` sees a conversation: a 1-on-1 is named after the other person. */
export function conversationFor(record: ConversationRecord, viewerId: string): Conversation {
  const other = record.members.find((m) => m.id !== viewerId) ?? record.members[0]
  return {
    id: record.id,
    title: record.title,
    members: record.members.map((m) => m.id),
    is_group: record.isGroup,
    member_count: record.members.length,
    display_name: record.isGroup || !other ? (record.title ?? '') : displayName(other),
    created_at: iso(record.createdAt),
    last_message_at: record.lastMessageAt === null ? null : iso(record.lastMessageAt),
    last_seq: record.lastSeq,
    last_event_seq: record.lastEventSeq,
  }
}

/** A conversation in `viewerId`'s list, with what they have read of it. */
export function listItemFor(record: ConversationRecord & { read: ReadState }, viewerId: string): ConversationListItem {
  return { ...conversationFor(record, viewerId), last_read_seq: record.read.lastReadSeq, unread_count: record.read.unreadCount }
}
