/**
 * What the gateway lets pile up for readers slower than their messages: at most PER_SOCKET_BYTES
 * for one socket, and the process-wide budget (WS_SEND_BUFFER_BUDGET_MIB) for all of them.
 *
 * Bun buffers what a socket's kernel buffer cannot take, and tells only the caller of a send: a
 * send or a topic publish returns -1 when it had to buffer for someone, and 0 when it dropped a
 * frame for someone over Bun's own limit, whom Bun then closes with 1006, leaving no trace of
 * why: such closes could not be counted. So the gateway enforces both limits itself, below Bun's:
 * after a drop, and whenever SWEEP_EVERY characters have gone to backpressured sockets, it reads
 * every socket's buffered amount and disconnects each one over PER_SOCKET_BYTES, then the slowest
 * while all together hold more than the budget, counting each close.
 *
 * A topic message is queued for each subscriber and handed to its socket when 32 have queued up
 * or the event loop's turn ends (uWS's TopicTree), so a sweep reads amounts up to 31 frames
 * behind. Bun's limit is therefore past PER_SOCKET_BYTES by a sweep's worth and those 32 frames:
 * a sweep always gets to a slow reader before Bun closes it. By the same token, the frames a turn
 * leaves queued (31 at most per socket) can come on top of the budget.
 */

/** A client that stops reading is disconnected once this much is buffered for it. */
export const PER_SOCKET_BYTES = 1024 * 1024

/** Characters sent to backpressured sockets before the next sweep (at most 3 bytes each in UTF-8). */
export const SWEEP_EVERY = 128 * 1024

/** The most frames uWS queues for one subscriber before handing them to its socket. */
const QUEUED_FRAMES = 32

/** The largest frame the gateway sends: a message of 4000 characters, escaped as HTML at worst. */
const MAX_SENT_FRAME_BYTES = 32 * 1024

/** Bun's own close-on-backpressure limit, a backstop a sweep always reaches first (see above). */
export const BUN_BACKPRESSURE_LIMIT = PER_SOCKET_BYTES + 3 * SWEEP_EVERY + QUEUED_FRAMES * MAX_SENT_FRAME_BYTES

export type Buffered<T> = { socket: T; bytes: number }

/**
 * The sockets to disconnect: every one over PER_SOCKET_BYTES, then, while the others together
 * are over the budget, the one with the most buffered (the slowest reader), and the next.
 */
export function slowestOverBudget<T>(buffers: Buffered<T>[], budgetBytes: number): { overSocketLimit: T[]; forBudget: T[] } {
  const overSocketLimit: T[] = []
  const forBudget: T[] = []
  const kept: Buffered<T>[] = []
  let total = 0
  for (const buffer of buffers) {
    if (buffer.bytes > PER_SOCKET_BYTES) overSocketLimit.push(buffer.socket)
    else {
      kept.push(buffer)
      total += buffer.bytes
    }
  }
  if (total > budgetBytes) {
    kept.sort((a, b) => b.bytes - a.bytes)
    for (const buffer of kept) {
      if (total <= budgetBytes) break
      forBudget.push(buffer.socket)
      total -= buffer.bytes
    }
  }
  return { overSocketLimit, forBudget }
}
