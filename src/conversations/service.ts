import { and, desc, eq, sql } from 'drizzle-orm'
import { perDatabase, type Db } from '../db/client'
import { conversationMembers, conversations, users, type ConversationRow } from '../db/schema'
import { Forbidden, Invalid, NotFound } from '../shared/errors'
import type { EventSink } from '../shared/events'
import { newId } from '../shared/ids'
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

export type Deps = { db: Db; bus: EventSink }

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

function withMembers(db: Db, rows: ConversationRow[]): ConversationRecord[] {
  if (rows.length === 0) return []
  const memberRows = lookups(db).membersOfEach.all({ ids: JSON.stringify(rows.map((r) => r.id)) })
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
export function create(deps: Deps, actor: User, input: unknown): { conversation: ConversationRecord; created: boolean } {
  const { db } = deps
  const parsed = checkCreate(input)
  const others = [...new Set(parsed.member_ids)].filter((id) => id !== actor.id)

  const known = new Set(userService.byIds(db, others).map((u) => u.id))
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
  const result = db.transaction(
    (tx) => {
      const [inserted] = tx
        .insert(conversations)
        .values({ id: newId(), title, isGroup: !isDirect, directKey: key, createdBy: actor.id, createdAt })
        .onConflictDoNothing({ target: conversations.directKey })
        .returning()
        .all()
      if (!inserted) {
        // The unique direct key held: this pair already has its 1-on-1.
        return { row: tx.select().from(conversations).where(eq(conversations.directKey, key!)).get()!, created: false }
      }
      tx.insert(conversationMembers)
        .values([actor.id, ...others].map((userId) => ({ conversationId: inserted.id, userId, joinedAt: createdAt, lastActivityAt: wholeSecond(createdAt) })))
        .run()
      return { row: inserted, created: true }
    },
    { behavior: 'immediate' },
  )

  const [conversation] = withMembers(db, [result.row])
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
export function pageFor(db: Db, actor: User, query: unknown = {}): ConversationPage {
  const parsed = checkList(query)
  const limit = Number(parsed.limit ?? LIST_DEFAULT_LIMIT) // a query string's "10" is a valid limit
  const { cursor } = parsed
  const from = cursor === undefined ? FIRST : decodeCursor(cursor)
  const { activeOf, membersOf } = lookups(db)
  const rows = activeOf.all({ userId: actor.id, at: from.at, id: from.id, limit: limit + 1 })
  const conversations: ConversationRecord[] = []
  let memberIds = 0
  for (const row of rows.slice(0, limit)) {
    const members = membersOf.all({ conversationId: row.conversation.id }).map(userService.toUser)
    if (conversations.length > 0 && memberIds + members.length > LIST_MAX_MEMBERS) break
    memberIds += members.length
    conversations.push(toRecord(row.conversation, members))
  }
  const last = rows[conversations.length - 1]
  const more = rows.length > conversations.length
  return { conversations, nextCursor: more && last ? encodeCursor({ at: last.activity, id: last.conversation.id }) : null }
}

/** Ids of the conversations a user belongs to (for subscribing their sockets). */
export function idsFor(db: Db, userId: string): string[] {
  return lookups(db)
    .memberOf.all({ userId })
    .map((r) => r.id)
}

/**
 * Prepared once per database, as every read here is: building a Drizzle query and having SQLite
 * compile it was most of a call (listing 24 conversations took ~280 µs built per call, ~113 µs
 * prepared; one conversation ~62 µs, ~14 µs), and on a socket's open it was most of the garbage
 * an upgrade left behind (bench/scenarios/memory.ts).
 */
const lookups = perDatabase((db) => ({
  // A variable number of conversations' members, in one statement: the ids go in as a JSON array.
  // Insertion order: the creator first, then the members as they were given.
  membersOfEach: db
    .select({ conversationId: conversationMembers.conversationId, id: users.id, username: users.username, fullName: users.fullName })
    .from(conversationMembers)
    .innerJoin(users, eq(users.id, conversationMembers.userId))
    .where(sql`${conversationMembers.conversationId} IN (SELECT value FROM json_each(${sql.placeholder('ids')}))`)
    .orderBy(sql`${conversationMembers}.rowid`)
    .prepare(),
  // One conversation's members, in the same order.
  membersOf: db
    .select({ id: users.id, username: users.username, fullName: users.fullName })
    .from(conversationMembers)
    .innerJoin(users, eq(users.id, conversationMembers.userId))
    .where(eq(conversationMembers.conversationId, sql.placeholder('conversationId')))
    .orderBy(sql`${conversationMembers}.rowid`)
    .prepare(),
  // A user's conversations after a position in the list's order: a range of their rows in the
  // (user_id, last_activity_at, conversation_id) index, read backwards, no sort.
  activeOf: db
    .select({ conversation: conversations, activity: conversationMembers.lastActivityAt })
    .from(conversationMembers)
    .innerJoin(conversations, eq(conversations.id, conversationMembers.conversationId))
    .where(
      and(
        eq(conversationMembers.userId, sql.placeholder('userId')),
        sql`(${conversationMembers.lastActivityAt}, ${conversationMembers.conversationId}) < (${sql.placeholder('at')}, ${sql.placeholder('id')})`,
      ),
    )
    .orderBy(desc(conversationMembers.lastActivityAt), desc(conversationMembers.conversationId))
    .limit(sql.placeholder('limit'))
    .prepare(),
  memberOf: db
    .select({ id: conversationMembers.conversationId })
    .from(conversationMembers)
    .where(eq(conversationMembers.userId, sql.placeholder('userId')))
    .prepare(),
  member: db
    .select({ userId: conversationMembers.userId })
    .from(conversationMembers)
    .where(and(eq(conversationMembers.conversationId, sql.placeholder('conversationId')), eq(conversationMembers.userId, sql.placeholder('userId'))))
    .prepare(),
  conversation: db.select().from(conversations).where(eq(conversations.id, sql.placeholder('id'))).prepare(),
}))

/**
 * Memberships already confirmed, per database, so a busy sender is not looked up on every
 * message. Sound because a membership, once made, is never removed (no API removes a member);
 * whoever adds removal must forget the pair here. Bounded: when full it starts again empty.
 */
const confirmed = perDatabase(() => new Set<string>())
const MAX_CONFIRMED = 100_000

/** Passes when the actor is a member: 404 when the conversation does not exist, 403 when not a member. */
export function requireMember(db: Db, actor: User, conversationId: string): void {
  const known = confirmed(db)
  const key = `${conversationId} ${actor.id}`
  if (known.has(key)) return
  const { member, conversation } = lookups(db)
  if (!member.get({ conversationId, userId: actor.id })) {
    if (!conversation.get({ id: conversationId })) throw new NotFound('Conversation not found')
    throw new Forbidden('You are not a member of this conversation')
  }
  if (known.size >= MAX_CONFIRMED) known.clear()
  known.add(key)
}

/** The conversation, if the actor may see it: 404 when it does not exist, 403 when not a member. */
export function requireMembership(db: Db, actor: User, conversationId: string): ConversationRow {
  requireMember(db, actor, conversationId)
  return lookups(db).conversation.get({ id: conversationId })!
}

/** A conversation with its members, for delivery; callers decide who may see it. */
export function recordById(db: Db, conversationId: string): ConversationRecord | undefined {
  const row = lookups(db).conversation.get({ id: conversationId })
  return row && withMembers(db, [row])[0]
}

export function get(db: Db, actor: User, conversationId: string): ConversationRecord {
  return withMembers(db, [requireMembership(db, actor, conversationId)])[0]!
}
