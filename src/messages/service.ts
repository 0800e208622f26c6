import * as conversationService from '../conversations/service'
import type { Store } from '../db/store'
import { Conflict, Forbidden, Invalid } from '../shared/errors'
import type { EventSink } from '../shared/events'
import { now } from '../shared/time'
import { checkMaxCharacters, validator } from '../shared/validation'
import type { User } from '../users/model'
import { MAX_CONTENT_CHARACTERS, PostMessage, toMessage, type Message } from './model'
import type { WriteJob } from './store'
import type { MessageWriter } from './writer'

export { between, history } from './history'

export type Deps = { store: Store; writer: MessageWriter; bus: EventSink }

const checkPost = validator(PostMessage)

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
  return { senderId: actor.id, conversationId: data.conversation_id, messageId: data.message_id, content: data.content, createdAt: now() }
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
      if (outcome.created) deps.bus.publish({ type: 'message.created', message })
      return { message, created: outcome.created }
    }
  }
}
