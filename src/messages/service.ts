import { and, asc, desc, eq, gt, lt, sql } from 'drizzle-orm'
import * as conversationService from '../conversations/service'
import type { Db } from '../db/client'
import { conversations, messages } from '../db/schema'
import { Conflict, Forbidden, Invalid } from '../shared/errors'
import type { EventSink } from '../shared/events'
import { newId } from '../shared/ids'
import { now } from '../shared/time'
import { checkMaxCharacters, validator } from '../shared/validation'
import type { User } from '../users/model'
import { HISTORY_DEFAULT_LIMIT, HistoryQuery, MAX_CONTENT_CHARACTERS, PostMessage, toMessage, type Message, type MessagePage } from './model'

export type Deps = { db: Db; bus: EventSink }

const checkPost = validator(PostMessage)
const checkHistory = validator(HistoryQuery)

function checkContent(content: string): void {
  if (content.trim() === '') throw Invalid.field('content', 'must not be empty or only whitespace')
  checkMaxCharacters('content', content, MAX_CONTENT_CHARACTERS)
}

/**
 * The one way a message enters the system, from REST, WebSocket and the web UI alike: validated,
 * de-duplicated on (sender, message_id), numbered, committed, then announced.
 *
 * A repeat of a stored message_id returns the stored message with created: false and stores and
 * announces nothing; reusing a message_id for different content or another conversation is a conflict.
 */
export function post(deps: Deps, actor: User, input: unknown): { message: Message; created: boolean } {
  const { db } = deps
  const data = checkPost(input)
  if (data.sender_id !== undefined && data.sender_id !== actor.id) throw new Forbidden('sender_id must be your own user id')
  checkContent(data.content)
  conversationService.requireMembership(db, actor, data.conversation_id)

  const result = db.transaction(
    (tx) => {
      const existing = tx
        .select()
        .from(messages)
        .where(and(eq(messages.senderId, actor.id), eq(messages.messageId, data.message_id)))
        .get()
      if (existing) {
        if (existing.conversationId !== data.conversation_id || existing.content !== data.content) {
          throw new Conflict('message_id was already used for a different message')
        }
        return { row: existing, created: false }
      }
      const createdAt = now()
      const { seq } = tx
        .update(conversations)
        .set({ lastSeq: sql`${conversations.lastSeq} + 1`, lastMessageAt: createdAt })
        .where(eq(conversations.id, data.conversation_id))
        .returning({ seq: conversations.lastSeq })
        .get()!
      const [row] = tx
        .insert(messages)
        .values({ id: newId(), conversationId: data.conversation_id, seq, senderId: actor.id, messageId: data.message_id, content: data.content, createdAt })
        .returning()
        .all()
      return { row: row!, created: true }
    },
    { behavior: 'immediate' },
  )

  const message = toMessage(result.row)
  if (result.created) deps.bus.publish({ type: 'message.created', message })
  return { message, created: result.created }
}

/**
 * A page of history, oldest first. Without `after`: the newest `limit` messages (before `before`,
 * if given). With `after`: the oldest `limit` messages after it (up to `before`, if given), to
 * catch up from the last seq a client saw.
 */
export function history(db: Db, actor: User, conversationId: string, query: unknown): MessagePage {
  const { limit = HISTORY_DEFAULT_LIMIT, before, after } = checkHistory(query)
  conversationService.requireMembership(db, actor, conversationId)
  const conditions = [eq(messages.conversationId, conversationId)]
  if (before !== undefined) conditions.push(lt(messages.seq, before))
  if (after !== undefined) conditions.push(gt(messages.seq, after))
  const forward = after !== undefined
  const rows = db
    .select()
    .from(messages)
    .where(and(...conditions))
    .orderBy(forward ? asc(messages.seq) : desc(messages.seq))
    .limit(limit + 1)
    .all()
  const has_more = rows.length > limit
  const page = rows.slice(0, limit)
  if (!forward) page.reverse()
  return { messages: page.map(toMessage), has_more }
}
