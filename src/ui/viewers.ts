import type { Viewer } from '../../views/message'
import type { ConversationRecord } from '../conversations/model'
import * as conversations from '../conversations/service'
import type { Store } from '../db/store'
import type { Message } from '../messages/model'
import * as messages from '../messages/service'
import { NotFound } from '../shared/errors'
import type { User } from '../users/model'
import * as users from '../users/service'

/**
 * What the web UI reads to show messages: only reads, never a rule. Who may see a conversation is
 * conversations.requireMembership's to say; what may be done to a message, the services' (the UI
 * shows Edit and Delete where they would allow it, and they decide).
 */

/** A conversation with its members and its creator (who may delete any message of a group). */
export type Shown = { record: ConversationRecord; creatorId: string }

/** The conversation if the actor is a member: 404 when there is none, 403 when they are not in it. */
export async function shownTo(store: Store, actor: User, conversationId: string): Promise<Shown> {
  const row = await conversations.requireMembership(store, actor, conversationId)
  return { record: await conversations.recordOf(store, row), creatorId: row.createdBy }
}

/** The conversation as it is, for delivery (callers decide who sees it). */
export async function shownById(store: Store, conversationId: string): Promise<Shown | undefined> {
  const row = await conversations.rowById(store, conversationId)
  return row && { record: await conversations.recordOf(store, row), creatorId: row.createdBy }
}

/** Messages of one conversation by id, as they are now; ids of other conversations are left out. */
export const messagesIn = messages.inConversation

/**
 * A message the actor may see, and its conversation, read in that order: the message shows its
 * state as of the conversation's last_event_seq or later (the view's version). 404 when there is
 * no such message, 403 when the actor is not in its conversation.
 */
export async function visibleMessage(store: Store, actor: User, id: string): Promise<{ shown: Shown; message: Message }> {
  const row = await messages.visibleMessage(store, actor, id)
  const shown = await shownTo(store, actor, row.conversationId)
  const [message] = await messagesIn(store, row.conversationId, [id])
  if (!message) throw new NotFound('Message not found')
  return { shown, message }
}

/** What messages need beside themselves, the same for every viewer: their quotes and the people they name. */
export type Context = Omit<Viewer, 'id'>

/**
 * The quotes of `messages` (the ones replied to, read unless among them) and everyone they name
 * (members, and former members who wrote, reacted or are quoted), at `version` (see Viewer).
 */
export async function contextFor(store: Store, shown: Shown, messages: readonly Message[], version: number, extraQuotes: readonly string[] = []): Promise<Context> {
  const known = new Map(messages.map((m) => [m.id, m]))
  const replied = [...messages.flatMap((m) => (m.reply_to === null ? [] : [m.reply_to])), ...extraQuotes]
  const quotes = new Map<string, Message>()
  for (const id of replied) {
    const message = known.get(id)
    if (message) quotes.set(id, message)
  }
  for (const message of await messagesIn(store, shown.record.id, replied.filter((id) => !quotes.has(id)))) quotes.set(message.id, message)

  const people = new Map<string, User>(shown.record.members.map((m) => [m.id, m]))
  const named = new Set<string>()
  for (const message of [...messages, ...quotes.values()]) {
    named.add(message.sender_id)
    for (const reaction of message.reactions) for (const id of reaction.user_ids) named.add(id)
  }
  const missing = [...named].filter((id) => !people.has(id))
  if (missing.length > 0) for (const user of await users.byIds(store, missing)) people.set(user.id, user)
  return { record: shown.record, creatorId: shown.creatorId, people, quotes, version }
}

export const viewerOf = (context: Context, viewerId: string): Viewer => ({ ...context, id: viewerId })
