import type { Store } from '../db/store'
import { ServiceUnavailable } from '../shared/errors'
import type { WriteJob, WriteOutcome } from './store'

/**
 * Group commit. Messages written while a batch is being committed wait and go together in the
 * next one: concurrent senders share one transaction and one fsync instead of paying one each.
 * A message waits at most for the batch ahead of it, and for the end of the current turn of the
 * event loop (setImmediate), never for a timer.
 */
export type MessageWriter = {
  /** Resolves once the job's batch has committed: with synchronous=FULL, it is on disk. */
  write(job: WriteJob): Promise<WriteOutcome>
  /** Writes everything already queued, waits for it, then stops; later writes are refused (503). */
  close(): Promise<void>
}

/** Bounds one transaction's length: how long a batch holds its thread, and its callers wait. */
const MAX_BATCH = 256

/** The writer for a store: one batch in flight at a time, through the store's commit. */
export function createMessageWriter(store: Pick<Store, 'messages'>): MessageWriter {
  const queue: Waiting[] = []
  let scheduled = false
  let inFlight: Promise<void> | null = null
  let closing = false

  function flush(): void {
    scheduled = false
    while (queue.length > 0 && !inFlight) {
      const batch = queue.splice(0, MAX_BATCH)
      let result: WriteOutcome[] | Promise<WriteOutcome[]>
      try {
        result = store.messages.commit(batch.map((w) => w.job))
      } catch (error) {
        for (const waiting of batch) waiting.reject(error)
        continue
      }
      if (Array.isArray(result)) {
        settle(batch, result)
        continue
      }
      inFlight = result
        .then(
          (outcomes) => settle(batch, outcomes),
          (error) => {
            for (const waiting of batch) waiting.reject(error)
          },
        )
        .finally(() => {
          inFlight = null
          flush()
        })
    }
  }

  function settle(batch: Waiting[], outcomes: WriteOutcome[]): void {
    for (const [i, waiting] of batch.entries()) waiting.resolve(outcomes[i]!)
  }

  return {
    write(job) {
      if (closing) return Promise.reject(new ServiceUnavailable('The server is shutting down'))
      return new Promise((resolve, reject) => {
        queue.push({ job, resolve, reject })
        if (!scheduled && !inFlight) {
          scheduled = true
          setImmediate(flush)
        }
      })
    },
    async close() {
      closing = true
      flush()
      while (inFlight) await inFlight
    },
  }
}

type Waiting = { job: WriteJob; resolve(outcome: WriteOutcome): void; reject(error: unknown): void }
