import * as conversationService from '../conversations/service'
import type { Store } from '../db/store'
import { Conflict, DomainError, Forbidden, Invalid, NotFound } from '../shared/errors'
import type { EventSink } from '../shared/events'
import { now } from '../shared/time'
import { checkMaxCharacters, validator } from '../shared/validation'
import type { User } from '../users/model'
import { isPossibleId } from '../shared/ids'
import { EditMessage, isOneEmoji, MAX_CONTENT_CHARACTERS, PostMessage, toMessage, type Message } from './model'
import type { MessageRow, WriteJob } from './store'
import type { MessageWriter } from './writer'

export { history } from './history'
export { exportConversation } from './export'

export type Deps = { store: Store; writer: MessageWriter; bus: EventSink }

const checkPost = validator(PostMessage)
const checkEdit = validator(EditMessage)

function checkContent(content: string): void {
  if (content.trim() === '') throw Invalid.field('content', 'must not be empty or only whitespace')
  checkMaxCharacters('content', content, MAX_CONTENT_CHARACTERS)
}

export type PostResult = { message: Message; created: boolean }

/**
 * The one way a message enters the system, from REST, WebSocket and the web UI alike: validated,
 * de-duplicated on (sender, message_id), numbered, committed, then announced. Resolves only after
 * the message's transaction has committed (synchronous=FULL: it is on disk); concurrent posts
 * share a transaction (group commit, see writer.ts).
 *
 * A repeat of a stored message_id resolves to the stored message with created: false and stores and
 * announces nothing; reusing a message_id for different content or another conversation is a conflict.
 */
export async function post(deps: Deps, actor: User, input: unknown): Promise<PostResult> {
  return write(deps, await check(deps, actor, input))
}

/** The first half of post(): the message validated and its sender's membership confirmed. */
export async function check(deps: Pick<Deps, 'store'>, actor: User, input: unknown): Promise<WriteJob> {
  const data = checkPost(input)
  if (data.sender_id !== undefined && data.sender_id !== actor.id) throw new Forbidden('sender_id must be your own user id')
  checkContent(data.content)
  await conversationService.requireMember(deps.store, actor, data.conversation_id)
  const replyTo = data.reply_to ?? null
  if (replyTo !== null) {
    const answered = isPossibleId(replyTo) ? await deps.store.messages.byId(replyTo) : undefined
    if (answered?.conversationId !== data.conversation_id) throw Invalid.field('reply_to', 'must be the id of a message in the same conversation')
  }
  return { senderId: actor.id, conversationId: data.conversation_id, messageId: data.message_id, content: data.content, createdAt: now(), replyTo }
}

/**
 * The second half of post(): a checked message queued for the next batch at once (so messages
 * checked in order are stored in that order), resolved once committed.
 */
export async function write(deps: Pick<Deps, 'writer' | 'bus'>, job: WriteJob): Promise<PostResult> {
  const outcome = await deps.writer.write(job)
  switch (outcome.kind) {
    case 'conflict':
      throw new Conflict('message_id was already used for a different message')
    case 'failed':
      throw Object.assign(new Error(outcome.error.message), outcome.error)
    case 'stored': {
      const message = toMessage(outcome.row)
      if (outcome.created) deps.bus.publish({ type: 'conversation.changed', change: { type: 'message', conversation_id: message.conversation_id, event_seq: outcome.eventSeq, message } })
      else checkAnnounced(deps, message.conversation_id)
      return { message, created: outcome.created }
    }
  }
}

/**
 * A retry found its change already stored: announced again as a check, in case the node that
 * stored it failed before announcing it (see DomainEvent conversation.check).
 */
function checkAnnounced(deps: Pick<Deps, 'bus'>, conversationId: string): void {
  deps.bus.publish({ type: 'conversation.check', conversationId })
}

/** A stored message the actor may see: 404 when there is none, 403 when they are not a member of its conversation. */
export async function visibleMessage(store: Store, actor: User, id: string): Promise<MessageRow> {
  const row = isPossibleId(id) ? await store.messages.byId(id) : undefined
  if (!row) throw new NotFound('Message not found')
  await conversationService.requireMember(store, actor, row.conversationId)
  return row
}

const deletedAlready = () => new DomainError(409, 'message_deleted', 'This message was deleted: it can no longer be edited')

/**
 * A change to a message (an edit, a deletion): `eventSeq` is its number in the conversation's
 * change stream, null when it changed nothing (an edit to the same content, a second deletion).
 */
export type MessageChangeResult = { message: Message; eventSeq: number | null }

/**
 * Its sender changes a message's content: stored with edited_at, numbered in the change stream,
 * and announced (`message_edited`). The same content again changes nothing (a retry is safe); a
 * deleted message cannot be edited (409 message_deleted).
 */
export async function edit(deps: Pick<Deps, 'store' | 'bus'>, actor: User, id: string, input: unknown): Promise<MessageChangeResult> {
  const { content } = checkEdit(input)
  checkContent(content)
  const row = await visibleMessage(deps.store, actor, id)
  if (row.senderId !== actor.id) throw new Forbidden('Only its sender may edit a message')
  if (row.deletedAt !== null) throw deletedAlready()
  const changed = await deps.store.messages.change({ type: 'message_edited', id: row.id, content, userId: actor.id, at: now() })
  if (!changed) {
    const current = (await deps.store.messages.byId(row.id))!
    if (current.deletedAt !== null) throw deletedAlready()
    checkAnnounced(deps, row.conversationId)
    return { message: toMessage(current), eventSeq: null }
  }
  const message = toMessage(changed.row)
  deps.bus.publish({ type: 'conversation.changed', change: { type: 'message_edited', conversation_id: message.conversation_id, event_seq: changed.eventSeq, message } })
  return { message, eventSeq: changed.eventSeq }
}

/**
 * Deletes a message: its sender may, and so may the creator of a group. Its content is erased
 * from storage, its reactions removed; it keeps its place and seq in history, with deleted_at set
 * and empty content, and the deletion is numbered in the change stream and announced
 * (`message_deleted`). Deleting it again changes nothing.
 */
export async function remove(deps: Pick<Deps, 'store' | 'bus'>, actor: User, id: string): Promise<MessageChangeResult> {
  const row = await visibleMessage(deps.store, actor, id)
  if (row.senderId !== actor.id) {
    const conversation = await deps.store.conversations.byId(row.conversationId)
    if (!conversation?.isGroup || conversation.createdBy !== actor.id) throw new Forbidden("Only its sender, or the group's creator, may delete a message")
  }
  const changed = await deps.store.messages.change({ type: 'message_deleted', id: row.id, userId: actor.id, at: now() })
  if (!changed) {
    checkAnnounced(deps, row.conversationId)
    return { message: toMessage((await deps.store.messages.byId(row.id))!), eventSeq: null }
  }
  const message = toMessage(changed.row)
  deps.bus.publish({ type: 'conversation.changed', change: { type: 'message_deleted', conversation_id: message.conversation_id, event_seq: changed.eventSeq, message } })
  return { message, eventSeq: changed.eventSeq }
}

/**
 * One person's reaction to a message, added (`added`) or taken back; both idempotent: a reaction
 * already there, or not there, changes nothing (null). Changes are numbered in the change stream
 * and announced (`reaction`). A deleted message takes no new reactions (409 message_deleted).
 */
export async function react(deps: Pick<Deps, 'store' | 'bus'>, actor: User, id: string, emoji: string, added: boolean): Promise<{ conversationId: string; eventSeq: number | null }> {
  if (!isOneEmoji(emoji)) throw Invalid.field('emoji', 'must be one emoji, URL-encoded in the path')
  const row = await visibleMessage(deps.store, actor, id)
  if (added && row.deletedAt !== null) throw new DomainError(409, 'message_deleted', 'This message was deleted: it takes no reactions')
  const changed = await deps.store.messages.react({ id: row.id, emoji, userId: actor.id, added, at: now() })
  if (!changed) {
    checkAnnounced(deps, row.conversationId)
    return { conversationId: row.conversationId, eventSeq: null }
  }
  deps.bus.publish({
    type: 'conversation.changed',
    change: { type: 'reaction', conversation_id: row.conversationId, event_seq: changed.eventSeq, message_id: row.id, emoji, user_id: actor.id, added },
  })
  return { conversationId: row.conversationId, eventSeq: changed.eventSeq }
}

/**
 * Messages of one conversation by id, as they are now; ids of no message, or of another
 * conversation's, are left out. For readers that checked the reader's membership.
 */
export async function inConversation(store: Store, conversationId: string, ids: readonly string[]): Promise<Message[]> {
  const wanted = [...new Set(ids)].filter(isPossibleId)
  if (wanted.length === 0) return []
  return (await store.messages.byIds(wanted)).filter((row) => row.conversationId === conversationId).map(toMessage)
}
