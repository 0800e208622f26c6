/** A message as stored. */
export type MessageRow = {
  id: string
  conversationId: string
  /** Position in the conversation: 1, 2, 3, … in commit order. */
  seq: number
  senderId: string
  /** The client's idempotency key, unique per sender. */
  messageId: string
  content: string
  createdAt: number
}

/** A validated message from a member, ready to be stored. */
export type WriteJob = {
  senderId: string
  conversationId: string
  messageId: string
  content: string
  /** When the server accepted it (epoch ms), by the clock of the thread that serves requests. */
  createdAt: number
}

/** What became of one job: stored (or found stored), refused as a conflicting reuse, or failed. */
export type WriteOutcome =
  | { kind: 'stored'; row: MessageRow; created: boolean }
  | { kind: 'conflict' }
  | { kind: 'failed'; error: { name: string; message: string; code?: string } }

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
  /** The same page as the JSON text of a MessagePage (messages/model.ts), for the REST API. */
  pageJson(range: PageRange): Promise<string>
}

/** A failure as plain data, so that it can cross a thread boundary and be classified (db/storage.ts) on the other side. */
export function failedOutcome(error: unknown): WriteOutcome {
  const e = error instanceof Error ? error : new Error(String(error))
  const code = (e as { code?: unknown }).code
  return { kind: 'failed', error: { name: e.name, message: e.message, ...(typeof code === 'string' ? { code } : {}) } }
}
