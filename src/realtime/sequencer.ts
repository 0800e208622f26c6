import type { Message } from '../messages/model'
import { rememberBounded } from '../shared/bounded'

/** How many conversations a node keeps the delivered seq of; the oldest is forgotten first. */
const MAX_CONVERSATIONS = 100_000

export type SequencerOptions = {
  /**
   * The conversation's stored messages with `after` < seq < `before`, oldest first, at most
   * `limit` (the database is the truth: what the bus did not bring is read from it).
   */
  read(conversationId: string, after: number, before: number, limit: number): Promise<Message[]>
  /** Hands one message to this node's sockets. */
  deliver(message: Message): void
  onError(error: unknown, conversationId: string): void
}

const PAGE = 200

/**
 * Each conversation's messages go to this node's sockets in seq order, each once, however the bus
 * brings them: another node's message can arrive after a later one committed here, a duplicate
 * can arrive, and pub/sub loses what is published while a node's subscriber is disconnected.
 * Per conversation it remembers the last seq delivered. The next one is delivered at once (no
 * read: the usual case); one already delivered is dropped; one past a gap waits while the
 * messages of the gap are read from the database, and is delivered after them. Seq is handed out
 * in commit order, so when seq n is known, every seq before it is already committed and readable.
 * After a bus interruption, catchUp() reads whatever each known conversation has after its last.
 * A conversation becomes known when a socket here starts to follow it (know(): the seq it stood
 * at then), or else at its first message; clients that were offline catch up themselves (history
 * with after=).
 */
export function createSequencer({ read, deliver, onError }: SequencerOptions) {
  const delivered = new Map<string, number>()
  /** Conversations with a read in flight: what arrives for them meanwhile waits behind it. */
  const busy = new Map<string, Promise<void>>()

  function advance(message: Message): void {
    const last = delivered.get(message.conversation_id)
    if (last !== undefined && message.seq <= last) return
    rememberBounded(delivered, message.conversation_id, message.seq, MAX_CONVERSATIONS)
    deliver(message)
  }

  /** Reads and delivers what the conversation has after its last delivered seq and below `before`. */
  async function fill(conversationId: string, before: number): Promise<void> {
    for (let page = 0; page < 1_000; page++) {
      const after = delivered.get(conversationId)
      if (after === undefined || after + 1 >= before) return
      const missing = await read(conversationId, after, before, PAGE)
      for (const message of missing) advance(message)
      if (missing.length < PAGE) return
    }
  }

  function inTurn(conversationId: string, work: () => Promise<void>): void {
    const previous = busy.get(conversationId) ?? Promise.resolve()
    const next = previous
      .then(work)
      .catch((error) => onError(error, conversationId))
      .finally(() => {
        if (busy.get(conversationId) === next) busy.delete(conversationId)
      })
    busy.set(conversationId, next)
  }

  return {
    /**
     * Where a conversation stood (its newest seq) when this node's sockets began to follow it: what
     * comes after it is delivered, gaps filled from there. Ignored once the conversation is known.
     */
    know(conversationId: string, lastSeq: number): void {
      if (!delivered.has(conversationId)) rememberBounded(delivered, conversationId, lastSeq, MAX_CONVERSATIONS)
    },
    accept(message: Message): void {
      const id = message.conversation_id
      const last = delivered.get(id)
      if (!busy.has(id) && (last === undefined || message.seq <= last + 1)) {
        advance(message)
        return
      }
      inTurn(id, async () => {
        try {
          await fill(id, message.seq)
        } finally {
          // Read or not (the database may be down), the message itself is delivered.
          advance(message)
        }
      })
    },
    /** After an interruption of the bus: the messages after its last of each known conversation that is `followed`. */
    catchUp(followed: (conversationId: string) => boolean): void {
      for (const id of delivered.keys()) if (followed(id)) inTurn(id, () => fill(id, Number.MAX_SAFE_INTEGER))
    },
  }
}
