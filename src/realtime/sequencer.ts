import type { Change } from '../conversations/changes'
import { rememberBounded } from '../shared/bounded'

/** How many conversations a node keeps the delivered event_seq of; the oldest is forgotten first. */
const MAX_CONVERSATIONS = 100_000

export type SequencerOptions = {
  /**
   * The conversation's committed changes with `after` < event_seq < `before`, oldest first, at
   * most `limit` (the database is the truth: what the bus did not bring is read from it); 'pruned'
   * when they are past retention.
   */
  read(conversationId: string, after: number, before: number, limit: number): Promise<Change[] | 'pruned'>
  /** Hands one change to this node's sockets. */
  deliver(change: Change): void
  onError(error: unknown, conversationId: string): void
}

const PAGE = 200

/**
 * Each conversation's changes (messages, edits, reactions...) go to this node's sockets in
 * event_seq order, each once, however the bus brings them: another node's change can arrive after
 * a later one committed here, a duplicate can arrive, and pub/sub loses what is published while a
 * node's subscriber is disconnected. Per conversation it remembers the last event_seq delivered.
 * The next one is delivered at once (no read: the usual case); one already delivered is dropped;
 * one past a gap waits while the changes of the gap are read from the database, and is delivered
 * after them. event_seq is handed out in commit order, so when n is known, every number before it
 * is already committed and readable. After a bus interruption, catchUp() reads whatever each
 * known conversation has after its last. A conversation becomes known when a socket here starts
 * to follow it (know(): the event_seq it stood at then), or else at its first change; clients
 * that were offline catch up themselves (GET /conversations/{id}/events, the resume frame).
 */
export function createSequencer({ read, deliver, onError }: SequencerOptions) {
  const delivered = new Map<string, number>()
  /** Conversations with a read in flight: what arrives for them meanwhile waits behind it. */
  const busy = new Map<string, Promise<void>>()

  function advance(change: Change): void {
    const last = delivered.get(change.conversation_id)
    if (last !== undefined && change.event_seq <= last) return
    rememberBounded(delivered, change.conversation_id, change.event_seq, MAX_CONVERSATIONS)
    deliver(change)
  }

  /** Reads and delivers what the conversation has after its last delivered seq and below `before`. */
  async function fill(conversationId: string, before: number): Promise<void> {
    for (let page = 0; page < 1_000; page++) {
      const after = delivered.get(conversationId)
      if (after === undefined || after + 1 >= before) return
      const missing = await read(conversationId, after, before, PAGE)
      if (missing === 'pruned') throw new Error(`changes after ${after} are past retention`)
      for (const change of missing) advance(change)
      if (missing.length < PAGE) return
    }
  }

  function inTurn(conversationId: string, work: () => Promise<void>): Promise<void> {
    const previous = busy.get(conversationId) ?? Promise.resolve()
    const next = previous
      .then(work)
      .catch((error) => onError(error, conversationId))
      .finally(() => {
        if (busy.get(conversationId) === next) busy.delete(conversationId)
      })
    busy.set(conversationId, next)
    return next
  }

  return {
    /**
     * Where a conversation stood (its newest event_seq) when this node's sockets began to follow
     * it: what comes after it is delivered, gaps filled from there. Ignored once it is known.
     */
    know(conversationId: string, lastEventSeq: number): void {
      if (!delivered.has(conversationId)) rememberBounded(delivered, conversationId, lastEventSeq, MAX_CONVERSATIONS)
    },
    accept(change: Change): void {
      const id = change.conversation_id
      const last = delivered.get(id)
      if (!busy.has(id) && (last === undefined || change.event_seq <= last + 1)) {
        advance(change)
        return
      }
      inTurn(id, async () => {
        try {
          await fill(id, change.event_seq)
        } finally {
          // Read or not (the database may be down), the change itself is delivered.
          advance(change)
        }
      })
    },
    /** The last event_seq delivered here, if the conversation is known. */
    position(conversationId: string): number | undefined {
      return delivered.get(conversationId)
    },
    /**
     * Delivers what the conversation has committed below `before` and was not delivered yet,
     * reading it from the database, in turn with what arrives meanwhile. Resolves once done.
     */
    deliverUpTo(conversationId: string, before: number): Promise<void> {
      return inTurn(conversationId, () => fill(conversationId, before))
    },
    /** After an interruption of the bus: the changes after its last of each known conversation that is `followed`. */
    catchUp(followed: (conversationId: string) => boolean): void {
      for (const id of delivered.keys()) if (followed(id)) inTurn(id, () => fill(id, Number.MAX_SAFE_INTEGER))
    },
  }
}
