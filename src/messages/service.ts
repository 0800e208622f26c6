import { and, eq, sql } from 'drizzle-orm'
import * as conversationService from '../conversations/service'
import { perDatabase, type Db } from '../db/client'
import { conversations, messages, type MessageRow } from '../db/schema'
import { Conflict, DomainError, Forbidden, Invalid } from '../shared/errors'
import type { EventSink } from '../shared/events'
import { newId } from '../shared/ids'
import { now } from '../shared/time'
import { checkMaxCharacters, validator } from '../shared/validation'
import type { User } from '../users/model'
import { MAX_CONTENT_CHARACTERS, PostMessage, toMessage, type Message } from './model'

export { history } from './history'

export type Deps = { db: Db; bus: EventSink }

const checkPost = validator(PostMessage)

function checkContent(content: string): void {
  if (content.trim() === '') throw Invalid.field('content', 'must not be empty or only whitespace')
  checkMaxCharacters('content', content, MAX_CONTENT_CHARACTERS)
}

export type PostResult = { message: Message; created: boolean }

/**
 * The one way a message enters the system, from REST, WebSocket and the web UI alike: validated,
 * de-duplicated on (sender, message_id), numbered, committed, then announced. Resolves only after
 * the message's transaction has committed (synchronous=FULL: it is on disk).
 *
 * A repeat of a stored message_id resolves to the stored message with created: false and stores and
 * announces nothing; reusing a message_id for different content or another conversation is a conflict.
 *
 * Group commit: posts that arrive in the same turn of the event loop are written in one
 * transaction, so concurrent senders share one fsync instead of paying one each. A post waits at
 * most for the rest of the current turn (setImmediate), never for a timer.
 */
export async function post(deps: Deps, actor: User, input: unknown): Promise<PostResult> {
  const data = checkPost(input)
  if (data.sender_id !== undefined && data.sender_id !== actor.id) throw new Forbidden('sender_id must be your own user id')
  checkContent(data.content)
  conversationService.requireMember(deps.db, actor, data.conversation_id)
  return new Promise((resolve, reject) => enqueue(deps, { senderId: actor.id, data, resolve, reject }))
}

type Job = { senderId: string; data: PostMessage; resolve(result: PostResult): void; reject(error: unknown): void }

/** Bounds one transaction's length, and so how long a batch holds the event loop. */
const MAX_BATCH = 256

const queues = new WeakMap<Db, Job[]>()

function enqueue(deps: Deps, job: Job): void {
  const queue = queues.get(deps.db)
  if (queue) {
    queue.push(job)
    return
  }
  queues.set(deps.db, [job])
  setImmediate(() => {
    const jobs = queues.get(deps.db)!
    queues.delete(deps.db)
    for (let i = 0; i < jobs.length; i += MAX_BATCH) settle(deps, jobs.slice(i, i + MAX_BATCH))
  })
}

/**
 * Commits a batch, then announces and acknowledges each message in order. If the transaction
 * itself fails (not a refusal of one message, which is answered alone), each job is retried in a
 * transaction of its own, so one bad message cannot fail the others.
 */
function settle(deps: Deps, jobs: Job[]): void {
  let outcomes: Array<{ row: MessageRow; created: boolean } | DomainError>
  try {
    outcomes = deps.db.transaction(() => jobs.map((job) => write(deps.db, job)), { behavior: 'immediate' })
  } catch (error) {
    if (jobs.length === 1) return jobs[0]!.reject(error)
    for (const job of jobs) settle(deps, [job])
    return
  }
  jobs.forEach((job, i) => {
    const outcome = outcomes[i]!
    if (outcome instanceof DomainError) return job.reject(outcome)
    const message = toMessage(outcome.row)
    if (outcome.created) deps.bus.publish({ type: 'message.created', message })
    job.resolve({ message, created: outcome.created })
  })
}

/** One message inside the batch's transaction; a refusal is returned before anything is written. */
function write(db: Db, { senderId, data }: Job): { row: MessageRow; created: boolean } | DomainError {
  const statements = statementsFor(db)
  const existing = statements.existing.get({ senderId, messageId: data.message_id })
  if (existing) {
    if (existing.conversationId !== data.conversation_id || existing.content !== data.content) {
      return new Conflict('message_id was already used for a different message')
    }
    return { row: existing, created: false }
  }
  const createdAt = now()
  const { seq } = statements.nextSeq.get({ conversationId: data.conversation_id, createdAt })!
  const row: MessageRow = { id: newId(), conversationId: data.conversation_id, seq, senderId, messageId: data.message_id, content: data.content, createdAt }
  statements.insert.run(row)
  return { row, created: true }
}

/** Prepared once per database: a batch runs them many times. */
const statementsFor = perDatabase((db) => ({
  existing: db
    .select()
    .from(messages)
    .where(and(eq(messages.senderId, sql.placeholder('senderId')), eq(messages.messageId, sql.placeholder('messageId'))))
    .prepare(),
  nextSeq: db
    .update(conversations)
    .set({ lastSeq: sql`${conversations.lastSeq} + 1`, lastMessageAt: sql`${sql.placeholder('createdAt')}` })
    .where(eq(conversations.id, sql.placeholder('conversationId')))
    .returning({ seq: conversations.lastSeq })
    .prepare(),
  insert: db
    .insert(messages)
    .values({
      id: sql.placeholder('id'),
      conversationId: sql.placeholder('conversationId'),
      seq: sql.placeholder('seq'),
      senderId: sql.placeholder('senderId'),
      messageId: sql.placeholder('messageId'),
      content: sql.placeholder('content'),
      createdAt: sql.placeholder('createdAt'),
    })
    .prepare(),
}))
