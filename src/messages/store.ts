import { driverError } from '../db/storage'

/** A message as stored. */
export type MessageRow = {
  id: string
  conversationId: string
  /** Position in the conversation: 1, 2, 3, … in commit order. */
  seq: number
  senderId: string
  /** The client's idempotency key, unique per sender. */
  messageId: string
  /** Empty once deleted. */
  content: string
  createdAt: number
  editedAt: number | null
  deletedAt: number | null
  /** The id of the message it answers. */
  replyTo: string | null
  /** Its reactions as the JSON of its `reactions` field; null for none. */
  reactions: string | null
}

/** A validated message from a member, ready to be stored. */
export type WriteJob = {
  senderId: string
  conversationId: string
  messageId: string
  content: string
  /** When the server accepted it (epoch ms), by the clock of the thread that serves requests. */
  createdAt: number
  /** The id of a message of the same conversation it answers, checked before it is queued; or null. */
  replyTo: string | null
}

/** What became of one job: stored (or found stored), refused as a conflicting reuse, or failed. */
export type WriteOutcome =
  /** eventSeq: a new message's number in its conversation's change stream (conversations/events.ts). */
  | { kind: 'stored'; row: MessageRow; created: true; eventSeq: number }
  | { kind: 'stored'; row: MessageRow; created: false }
  | { kind: 'conflict' }
  | { kind: 'failed'; error: { name: string; message: string; code?: string } }

/** An edit or deletion of a stored message, by `userId`, at `at` (epoch ms). */
export type MessageChangeInput = { id: string; userId: string; at: number } & ({ type: 'message_edited'; content: string } | { type: 'message_deleted' })

/** One person's reaction with one emoji to one message, added or taken back, at `at` (epoch ms). */
export type ReactionInput = { id: string; emoji: string; userId: string; added: boolean; at: number }

/**
 * A message's reactions as its `reactions` field, from its reaction rows in the order they were
 * made (then by user id): each emoji in the order it was first used, with who used it. Null for none.
 */
export function reactionsJson(rows: ReadonlyArray<{ emoji: string; userId: string }>): string | null {
  if (rows.length === 0) return null
  const byEmoji = new Map<string, string[]>()
  for (const { emoji, userId } of rows) {
    const users = byEmoji.get(emoji)
    if (users) users.push(userId)
    else byEmoji.set(emoji, [userId])
  }
  return JSON.stringify([...byEmoji].map(([emoji, user_ids]) => ({ emoji, user_ids })))
}

/** A page of one conversation's history: the `limit` messages at one end of the range (after, before), oldest first. */
export type PageRange = { conversationId: string; from: 'newest' | 'oldest'; after: number; before: number; limit: number }

/** Every query of the messages context; one implementation per engine. */
export type MessageStore = {
  /**
   * Stores a batch in one transaction (group commit, see writer.ts): each job numbered with its
   * conversation's next seq, a replayed (sender, message_id) stored nothing and answered with the
   * stored row, a reuse for other content refused as a conflict. Resolves after COMMIT. If the
   * transaction fails, each job is tried alone, so one message the database refuses fails alone;
   * unless the storage failed, which fails them all at once. A synchronous engine may answer
   * synchronously (the writer then settles the batch without another turn of the event loop).
   */
  commit(jobs: readonly WriteJob[]): WriteOutcome[] | Promise<WriteOutcome[]>
  page(range: PageRange): Promise<{ rows: MessageRow[]; hasMore: boolean }>
  byId(id: string): Promise<MessageRow | undefined>
  /** The messages with these ids (in no particular order); unknown ids are left out. */
  byIds(ids: readonly string[]): Promise<MessageRow[]>
  /**
   * Changes a message, in one transaction with its change in the conversation's change stream
   * (conversationEvents): an edit sets its content and edited_at, a deletion empties its content,
   * sets deleted_at and removes its reactions. Null when there is nothing to change: no such
   * message, one deleted already, or an edit to the content it has.
   */
  change(change: MessageChangeInput): Promise<{ row: MessageRow; eventSeq: number } | null>
  /**
   * Adds or removes one person's reaction, in one transaction with its change (`reaction`) and
   * the message's `reactions` rewritten. Null when there is nothing to change: no such message, a
   * deleted one, a reaction already there (added) or not there (removed).
   */
  react(reaction: ReactionInput): Promise<{ row: MessageRow; eventSeq: number } | null>
  /** The same page as the JSON text of a MessagePage (messages/model.ts), for the REST API. */
  pageJson(range: PageRange): Promise<string>
  /** The oldest page of the range (from: 'oldest') as NDJSON, for an export (messages/export.ts). */
  exportPage(range: ExportRange): Promise<ExportPage>
}

/** A page of an export: the oldest `limit` messages of the range (after, before). */
type ExportRange = Omit<PageRange, 'from'>

/**
 * Each message's JSON (as in a MessagePage) on a line of its own, each line ending in "\n" (empty
 * for no message); how many; the seq of the last, to read the next page after it (keyset); and
 * whether more of the range follows.
 */
type ExportPage = { ndjson: string; count: number; lastSeq: number; hasMore: boolean }

/** A failure as plain data, so that it can cross a thread boundary and be classified (db/storage.ts) on the other side. */
export function failedOutcome(error: unknown): WriteOutcome {
  // The driver's error, not a wrapper's: its code classifies it, and a wrapper's message may quote the
  // statement's parameters (the message itself).
  const cause = driverError(error)
  const e = cause instanceof Error ? cause : new Error(String(cause))
  const code = (e as { code?: unknown }).code
  return { kind: 'failed', error: { name: e.name, message: e.message, ...(typeof code === 'string' ? { code } : {}) } }
}

/**
 * Whether a message sent with a stored (sender, message_id) repeats the stored one: the same
 * conversation and content, or any content once the stored one was edited or deleted (its first
 * content is gone, and a retry of the first send must not fail because of what came after it).
 */
export function isRetryOf(stored: MessageRow, conversationId: string, content: string): boolean {
  return stored.conversationId === conversationId && (stored.content === content || stored.editedAt !== null || stored.deletedAt !== null)
}
