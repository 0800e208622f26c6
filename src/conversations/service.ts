import type { Store } from '../db/store'
import { Forbidden, Invalid, NotFound } from '../shared/errors'
import type { EventSink } from '../shared/events'
import { isPossibleId, newId } from '../shared/ids'
import { perKey } from '../shared/memo'
import { now, wholeSecond } from '../shared/time'
import { checkMaxCharacters, validator } from '../shared/validation'
import type { User } from '../users/model'
import * as userService from '../users/service'
import {
  ConversationListQuery,
  CreateConversation,
  LIST_DEFAULT_LIMIT,
  LIST_MAX_MEMBERS,
  MAX_TITLE_CHARACTERS,
  type ConversationPage,
  type ConversationRecord,
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
  const conversations: ConversationRecord[] = []
  let memberIds = 0
  for (const row of rows.slice(0, limit)) {
    const members = (await store.conversations.membersOf(row.conversation.id)).map(userService.toUser)
    if (conversations.length > 0 && memberIds + members.length > LIST_MAX_MEMBERS) break
    memberIds += members.length
    conversations.push(toRecord(row.conversation, members))
  }
  const last = rows[conversations.length - 1]
  const more = rows.length > conversations.length
  return { conversations, nextCursor: more && last ? encodeCursor({ at: last.activity, id: last.conversation.id }) : null }
}

/**
 * The conversations a user belongs to, each with the seq of its newest message: for subscribing
 * their sockets, which get live what comes after it.
 */
export function positionsFor(store: Store, userId: string): Promise<Array<{ id: string; lastSeq: number }>> {
  return store.conversations.positionsOf(userId)
}

/**
 * Memberships already confirmed, per database, so a busy sender is not looked up on every
 * message. Each is believed for MEMBERSHIP_MEMORY_MS, then read again: no API removes a member
 * yet, but a membership ended in the database (by another node, or by hand) stops being believed
 * within that time on every node by itself. Bounded: when full it starts again empty.
 */
const confirmed = perKey((_: Store) => new Map<string, number>())
const MAX_CONFIRMED = 100_000
export const MEMBERSHIP_MEMORY_MS = 5_000

/** Passes when the actor is a member: 404 when the conversation does not exist, 403 when not a member. */
export async function requireMember(store: Store, actor: User, conversationId: string): Promise<void> {
  const known = confirmed(store)
  const key = `${conversationId} ${actor.id}`
  const until = known.get(key)
  if (until !== undefined && performance.now() < until) return
  if (!isPossibleId(conversationId)) throw new NotFound('Conversation not found')
  const checkedAt = performance.now()
  if (!(await store.conversations.isMember(conversationId, actor.id))) {
    known.delete(key)
    if (!(await store.conversations.byId(conversationId))) throw new NotFound('Conversation not found')
    throw new Forbidden('You are not a member of this conversation')
  }
  if (known.size >= MAX_CONFIRMED) known.clear()
  known.set(key, checkedAt + MEMBERSHIP_MEMORY_MS)
}

/** The conversation, if the actor may see it: 404 when it does not exist, 403 when not a member. */
export async function requireMembership(store: Store, actor: User, conversationId: string): Promise<ConversationRow> {
  await requireMember(store, actor, conversationId)
  return (await store.conversations.byId(conversationId))!
}

/** A conversation with its members, for delivery; callers decide who may see it. */
export async function recordById(store: Store, conversationId: string): Promise<ConversationRecord | undefined> {
  const row = await store.conversations.byId(conversationId)
  return row && (await withMembers(store, [row]))[0]
}

export async function get(store: Store, actor: User, conversationId: string): Promise<ConversationRecord> {
  return (await withMembers(store, [await requireMembership(store, actor, conversationId)]))[0]!
}
