import type { Store } from '../db/store'
import { DomainError, Forbidden, Invalid, NotFound } from '../shared/errors'
import type { EventSink } from '../shared/events'
import { isPossibleId, newId } from '../shared/ids'
import { perKey } from '../shared/memo'
import { now, wholeSecond } from '../shared/time'
import { checkMaxCharacters, validator } from '../shared/validation'
import type { User } from '../users/model'
import * as userService from '../users/service'
import {
  AddMembers,
  ConversationListQuery,
  CreateConversation,
  LIST_DEFAULT_LIMIT,
  LIST_MAX_MEMBERS,
  MarkRead,
  MAX_TITLE_CHARACTERS,
  RenameConversation,
  type ConversationPage,
  type ConversationRecord,
  type Reading,
} from './model'
import type { ConversationRow } from './store'

export type Deps = { store: Store; bus: EventSink }

const checkCreate = validator(CreateConversation)
const checkList = validator(ConversationListQuery)

/** The two members of a 1-on-1, order-independent: the key that makes the pair unique. */
const directKey = (a: string, b: string) => (a < b ? `${a}:${b}` : `${b}:${a}`)

const toRecord = (r: ConversationRow, members: User[]): ConversationRecord => ({
  id: r.id,
  title: r.title,
  isGroup: r.isGroup,
  createdAt: r.createdAt,
  lastSeq: r.lastSeq,
  lastEventSeq: r.lastEventSeq,
  lastMessageAt: r.lastMessageAt,
  members,
})

async function withMembers(store: Store, rows: ConversationRow[]): Promise<ConversationRecord[]> {
  if (rows.length === 0) return []
  const memberRows = await store.conversations.membersOfEach(rows.map((r) => r.id))
  const members = new Map<string, User[]>()
  for (const m of memberRows) {
    const list = members.get(m.conversationId) ?? []
    list.push(userService.toUser(m))
    members.set(m.conversationId, list)
  }
  return rows.map((r) => toRecord(r, members.get(r.id) ?? []))
}

/**
 * Creates a conversation with the actor as a member. Exactly one other member is the 1-on-1 between
 * the two, whatever the title (which a 1-on-1 does not have): the pair's existing conversation is
 * returned instead (created: false), whichever side made it. `is_group: true` makes a group even of
 * two; a group needs a title.
 */
export async function create(deps: Deps, actor: User, input: unknown): Promise<{ conversation: ConversationRecord; created: boolean }> {
  const { store } = deps
  const parsed = checkCreate(input)
  const others = [...new Set(parsed.member_ids)].filter((id) => id !== actor.id)

  const known = new Set((await userService.byIds(store, others)).map((u) => u.id))
  const unknown = others.filter((id) => !known.has(id))
  if (unknown.length > 0) throw Invalid.field('member_ids', `has unknown user id${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`)

  const isDirect = parsed.is_group !== true && others.length === 1
  if (parsed.is_group === false && !isDirect) throw Invalid.field('is_group', 'can be false only with exactly one other member (a 1-on-1)')
  let title: string | null = null
  if (!isDirect) {
    title = parsed.title?.trim() || null
    if (parsed.title != null && title === null) throw Invalid.field('title', 'must not be blank')
    if (title === null) {
      throw Invalid.field('title', others.length === 0 ? 'is required for a group (or name exactly one other member for a 1-on-1)' : 'is required for a group')
    }
    checkMaxCharacters('title', title, MAX_TITLE_CHARACTERS)
  }

  const key = isDirect ? directKey(actor.id, others[0]!) : null
  const createdAt = now()
  const result = await store.conversations.create({
    id: newId(),
    title,
    isGroup: !isDirect,
    directKey: key,
    createdBy: actor.id,
    createdAt,
    memberIds: [actor.id, ...others],
    activityAt: wholeSecond(createdAt),
  })

  const [conversation] = await withMembers(store, [result.row])
  if (result.created) deps.bus.publish({ type: 'conversation.created', conversation: conversation! })
  return { conversation: conversation!, created: result.created }
}

/** Where a page starts: after this (activity, id) in the list's order. The first page starts above everything. */
type Position = { at: number; id: string }
const FIRST: Position = { at: Number.MAX_SAFE_INTEGER, id: '' }

const BAD_CURSOR = 'must be the next_cursor of an earlier page'

/** Opaque to clients, so the order's key can change without breaking their code. */
const encodeCursor = ({ at, id }: Position): string => Buffer.from(`${at}.${id}`).toString('base64url')

function decodeCursor(cursor: string): Position {
  const text = Buffer.from(cursor, 'base64url').toString('utf8')
  const match = /^(\d{1,16})\.([\x21-\x7E]{1,64})$/.exec(text)
  // Base64 decoding skips what it cannot read; only the exact encoding of a position is one.
  if (!match || encodeCursor({ at: Number(match[1]), id: match[2]! }) !== cursor || !Number.isSafeInteger(Number(match[1]))) {
    throw Invalid.field('cursor', BAD_CURSOR)
  }
  return { at: Number(match[1]), id: match[2]! }
}

/**
 * One page of the actor's conversations, most recently active first (a conversation's activity is
 * the second of its newest message, or of its creation; within a second the larger id goes
 * first), read from the member's index in that order (tests/conversations/query-plan.test.ts):
 * the work is the page's, however many conversations the actor is in. At most `limit`, and fewer
 * once their members pass LIST_MAX_MEMBERS. A page continues after the position where the
 * previous one ended, so a conversation that became active meanwhile moved in front of it and is
 * not repeated (nor shown by later pages: the live push brings it).
 */
export async function pageFor(store: Store, actor: User, query: unknown = {}): Promise<ConversationPage> {
  const parsed = checkList(query)
  const limit = Number(parsed.limit ?? LIST_DEFAULT_LIMIT) // a query string's "10" is a valid limit
  const { cursor } = parsed
  const from = cursor === undefined ? FIRST : decodeCursor(cursor)
  const rows = await store.conversations.activeOf(actor.id, from, limit + 1)
  const conversations: ConversationPage['conversations'] = []
  let memberIds = 0
  for (const row of rows.slice(0, limit)) {
    const members = (await store.conversations.membersOf(row.conversation.id)).map(userService.toUser)
    if (conversations.length > 0 && memberIds + members.length > LIST_MAX_MEMBERS) break
    memberIds += members.length
    conversations.push({ ...toRecord(row.conversation, members), read: { lastReadSeq: row.lastReadSeq, unreadCount: row.unreadCount } })
  }
  const last = rows[conversations.length - 1]
  const more = rows.length > conversations.length
  return { conversations, nextCursor: more && last ? encodeCursor({ at: last.activity, id: last.conversation.id }) : null }
}

/**
 * The conversations a user belongs to, each with the seq of its newest message: for subscribing
 * their sockets, which get live what comes after it.
 */
export function positionsFor(store: Store, userId: string): Promise<Array<{ id: string; lastEventSeq: number }>> {
  return store.conversations.positionsOf(userId)
}

/** Everyone who shares a conversation with the user, each once (whom their presence concerns). */
export function coMembersOf(store: Store, userId: string): Promise<string[]> {
  return store.conversations.coMembersOf(userId)
}

/** The ids of a conversation's members, for delivery; callers decide who may see it. */
export async function memberIdsOf(store: Store, conversationId: string): Promise<string[]> {
  return (await store.conversations.membersOf(conversationId)).map((member) => member.id)
}

/**
 * Memberships already confirmed, per database, so a busy sender is not looked up on every
 * message. A removal forgets its membership at once on every node (forgetMember, on the bus's
 * `member_removed`); and each is believed for MEMBERSHIP_MEMORY_MS at most, then read again, so
 * one ended without the news reaching a node (a lost event, a change by hand) heals by itself.
 * Bounded: when full it starts again empty.
 */
const confirmed = perKey((_: Store) => ({ until: new Map<string, number>(), forgotten: 0 }))
const MAX_CONFIRMED = 100_000
export const MEMBERSHIP_MEMORY_MS = 5_000

/** Passes when the actor is a member: 404 when the conversation does not exist, 403 when not a member. */
export async function requireMember(store: Store, actor: User, conversationId: string): Promise<void> {
  const cache = confirmed(store)
  const known = cache.until
  const key = `${conversationId} ${actor.id}`
  const until = known.get(key)
  if (until !== undefined && performance.now() < until) return
  if (!isPossibleId(conversationId)) throw new NotFound('Conversation not found')
  const checkedAt = performance.now()
  const forgotten = cache.forgotten
  if (!(await store.conversations.isMember(conversationId, actor.id))) {
    known.delete(key)
    if (!(await store.conversations.byId(conversationId))) throw new NotFound('Conversation not found')
    throw new Forbidden('You are not a member of this conversation')
  }
  // A membership ended while it was being read is not remembered as one.
  if (cache.forgotten !== forgotten) return
  if (known.size >= MAX_CONFIRMED) known.clear()
  known.set(key, checkedAt + MEMBERSHIP_MEMORY_MS)
}

/** A membership ended (here or on another node): believed no longer, from now on. */
export function forgetMember(store: Store, conversationId: string, userId: string): void {
  const cache = confirmed(store)
  cache.forgotten++
  cache.until.delete(`${conversationId} ${userId}`)
}

/** The conversation, if the actor may see it: 404 when it does not exist, 403 when not a member. */
export async function requireMembership(store: Store, actor: User, conversationId: string): Promise<ConversationRow> {
  await requireMember(store, actor, conversationId)
  return (await store.conversations.byId(conversationId))!
}

/** A conversation as stored, for delivery; callers decide who may see it. */
export function rowById(store: Store, conversationId: string): Promise<ConversationRow | undefined> {
  return store.conversations.byId(conversationId)
}

/** A conversation with its members, for delivery; callers decide who may see it. */
export async function recordById(store: Store, conversationId: string): Promise<ConversationRecord | undefined> {
  const row = await store.conversations.byId(conversationId)
  return row && recordOf(store, row)
}

/** A conversation already read, with its members. */
export async function recordOf(store: Store, row: ConversationRow): Promise<ConversationRecord> {
  return (await withMembers(store, [row]))[0]!
}

export async function get(store: Store, actor: User, conversationId: string): Promise<ConversationRecord> {
  return recordOf(store, await requireMembership(store, actor, conversationId))
}

const checkRead = validator(MarkRead)

/**
 * A member has read up to `seq`: their read position moves forward to it (never back, never past
 * the newest message), a `read` change every member's sockets get, the reader's other devices to
 * clear what is unread, the others as a receipt. Reading what was already read changes nothing.
 */
export async function markRead(deps: Deps, actor: User, conversationId: string, input: unknown): Promise<void> {
  const { seq } = checkRead(input)
  await requireMember(deps.store, actor, conversationId)
  const moved = await deps.store.conversations.markRead(conversationId, actor.id, seq, now())
  if (moved) deps.bus.publish({ type: 'conversation.changed', change: { type: 'read', conversation_id: conversationId, event_seq: moved.eventSeq, user_id: actor.id, seq: moved.seq } })
}

/** Every member's read position, for members. */
export async function reads(store: Store, actor: User, conversationId: string): Promise<Array<{ userId: string; seq: number }>> {
  await requireMember(store, actor, conversationId)
  return store.conversations.reads(conversationId)
}

/**
 * For showing a conversation's reads to those with it open: every member's read position, and the
 * unread counts of `viewerIds` (its members among them). Callers decide who sees it.
 */
export async function readingOf(store: Store, conversationId: string, viewerIds: readonly string[]): Promise<Reading> {
  const [positions, counts] = await Promise.all([store.conversations.reads(conversationId), store.conversations.unreadCounts(conversationId, viewerIds)])
  return { reads: new Map(positions.map((r) => [r.userId, r.seq])), unread: new Map(counts.map((c) => [c.userId, c.unreadCount])) }
}

/** A group as it is after a change to it, and whether anything changed. */
export type GroupChange = { conversation: ConversationRecord; changed: boolean }

const checkAdd = validator(AddMembers)
const checkRename = validator(RenameConversation)

/** Membership changes are for groups: a 1-on-1 is its two people. */
async function requireGroup(store: Store, actor: User, conversationId: string): Promise<ConversationRow> {
  const conversation = await requireMembership(store, actor, conversationId)
  if (!conversation.isGroup) throw new DomainError(409, 'not_a_group', 'A 1-on-1 keeps its two members and has no title: create a group instead')
  return conversation
}

/**
 * Any member adds people to a group: those not yet members become members (they can read its
 * history), each a `member_added` change, announced with the conversation for their sockets.
 * Ones already members are left as they are. The group as it is after.
 */
export async function addMembers(deps: Deps, actor: User, conversationId: string, input: unknown): Promise<GroupChange> {
  const { member_ids } = checkAdd(input)
  await requireGroup(deps.store, actor, conversationId)
  const ids = [...new Set(member_ids)]
  const known = new Set((await userService.byIds(deps.store, ids)).map((u) => u.id))
  const unknown = ids.filter((id) => !known.has(id))
  if (unknown.length > 0) throw Invalid.field('member_ids', `has unknown user id${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`)
  const added = await deps.store.conversations.addMembers(conversationId, ids, actor.id, now())
  const conversation = (await recordById(deps.store, conversationId))!
  for (const { userId, eventSeq } of added) {
    deps.bus.publish({ type: 'conversation.changed', change: { type: 'member_added', conversation_id: conversationId, event_seq: eventSeq, user_id: userId, by: actor.id }, conversation })
  }
  return { conversation, changed: added.length > 0 }
}

/**
 * Someone leaves a group (themselves), or its creator removes them. From then on they are not a
 * member on any node: their sockets stop receiving it and their reads are 403. 404 when they are
 * not a member.
 */
export async function removeMember(deps: Deps, actor: User, conversationId: string, userId: string): Promise<void> {
  const group = await requireGroup(deps.store, actor, conversationId)
  if (userId !== actor.id && group.createdBy !== actor.id) throw new Forbidden("Only the group's creator may remove someone else; anyone may leave")
  const eventSeq = isPossibleId(userId) ? await deps.store.conversations.removeMember(conversationId, userId, actor.id, now()) : null
  if (eventSeq === null) throw new NotFound('That user is not a member of this conversation')
  forgetMember(deps.store, conversationId, userId)
  deps.bus.publish({ type: 'conversation.changed', change: { type: 'member_removed', conversation_id: conversationId, event_seq: eventSeq, user_id: userId, by: actor.id } })
}

/** Any member renames a group (`conversation_updated`); the same title again changes nothing. */
export async function rename(deps: Deps, actor: User, conversationId: string, input: unknown): Promise<GroupChange> {
  const title = checkRename(input).title.trim()
  if (title === '') throw Invalid.field('title', 'must not be blank')
  checkMaxCharacters('title', title, MAX_TITLE_CHARACTERS)
  await requireGroup(deps.store, actor, conversationId)
  const eventSeq = await deps.store.conversations.rename(conversationId, title, actor.id, now())
  if (eventSeq !== null) {
    deps.bus.publish({ type: 'conversation.changed', change: { type: 'conversation_updated', conversation_id: conversationId, event_seq: eventSeq, title, by: actor.id } })
  }
  return { conversation: (await recordById(deps.store, conversationId))!, changed: eventSeq !== null }
}
