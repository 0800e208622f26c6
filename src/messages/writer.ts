import type { Database } from 'bun:sqlite'
import { AsyncResource } from 'node:async_hooks'
import type { MessageWriterKind } from '../config'
import { reportFailure, reportQueries, type Db, type QueryTimings } from '../db/client'
import { ServiceUnavailable } from '../shared/errors'
import { commitBatch, type WriteJob, type WriteOutcome } from './store'

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

/** Commits one batch; at most one is in flight at a time. */
type Committer = {
  commit(jobs: WriteJob[]): WriteOutcome[] | Promise<WriteOutcome[]>
  close(): void | Promise<void>
}

/** Bounds one transaction's length: how long a batch holds its thread, and its callers wait. */
export const MAX_BATCH = 256

/**
 * The writer for a database. 'inline' (the default) commits on the event loop. 'worker' commits in
 * a Worker with its own connection, so a COMMIT's fsync never blocks the event loop; it needs a
 * core of its own to pay off: with the server on one core (bench/), the two threads' handoffs cost
 * more than the fsync they hide, and latency was worse. An in-memory database exists only on its
 * own connection, so it is always written inline.
 */
export function createMessageWriter(database: { db: Db; sqlite: Database }, path: string, kind: MessageWriterKind = 'inline'): MessageWriter {
  const inline = kind === 'inline' || path === ':memory:'
  return groupCommit(inline ? { commit: (jobs) => commitBatch(database.db, jobs), close() {} } : workerCommitter(database.sqlite, path))
}

type Waiting = { job: WriteJob; resolve(outcome: WriteOutcome): void; reject(error: unknown): void }

function groupCommit(committer: Committer): MessageWriter {
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
        result = committer.commit(batch.map((w) => w.job))
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
          (error) => batch.forEach((waiting) => waiting.reject(error)),
        )
        .finally(() => {
          inFlight = null
          flush()
        })
    }
  }

  function settle(batch: Waiting[], outcomes: WriteOutcome[]): void {
    batch.forEach((waiting, i) => waiting.resolve(outcomes[i]!))
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
      await committer.close()
    },
  }
}

type FromWorker = { type: 'committed'; outcomes: WriteOutcome[]; timings: QueryTimings } | { type: 'closed' }
export type ToWorker = { type: 'open'; path: string } | { type: 'commit'; jobs: WriteJob[] } | { type: 'close' }

/**
 * Commits in a Worker (writer-worker.ts) on its own connection to the same file. Its statement
 * and transaction timings, and its failures, are reported to this connection's observers
 * (metrics, readiness), as if run here.
 * A worker that dies fails its batch; the next batch starts a new one.
 */
function workerCommitter(sqlite: Database, path: string): Committer {
  let worker: Bun.Worker | null = null
  let waiting: { resolve(outcomes: WriteOutcome[]): void; reject(error: unknown): void; inCaller<T>(fn: () => T): T } | null = null
  let closed: (() => void) | null = null

  const fail = (error: Error) => {
    const batch = waiting
    waiting = null
    batch?.reject(error)
  }

  function start(): Bun.Worker {
    // Bun's Worker (ref/unref); the DOM lib in tsconfig names the browser's.
    const started = new Worker(new URL('./writer-worker.ts', import.meta.url).href) as unknown as Bun.Worker
    started.addEventListener('message', (event) => {
      const data = (event as MessageEvent<FromWorker>).data
      if (data.type === 'closed') return closed?.()
      const batch = waiting!
      waiting = null
      started.unref() // idle: it must not keep the process alive
      // In the context the batch was sent from (its first caller's, as for an inline commit), so a
      // trace shows the batch's database work under a request that waited for it.
      batch.inCaller(() => {
        reportQueries(sqlite, data.timings)
        for (const outcome of data.outcomes) if (outcome.kind === 'failed') reportFailure(sqlite, outcome.error)
      })
      batch.resolve(data.outcomes)
    })
    started.onerror = (event) => {
      event.preventDefault()
      fail(new Error(`The message writer failed: ${event.message}`))
    }
    started.addEventListener('close', () => {
      if (worker === started) worker = null
      fail(new Error('The message writer stopped'))
      closed?.()
    })
    started.postMessage({ type: 'open', path } satisfies ToWorker)
    started.unref() // only a batch in flight keeps the process alive (see commit)
    return started
  }

  // Started now, so the first message does not wait for the worker's start (tens of ms).
  worker = start()
  return {
    commit(jobs) {
      worker ??= start()
      worker.ref() // a batch in flight keeps the process alive until it is answered
      const sent = worker
      return new Promise((resolve, reject) => {
        waiting = { resolve, reject, inCaller: AsyncResource.bind(<T>(fn: () => T): T => fn()) }
        sent.postMessage({ type: 'commit', jobs } satisfies ToWorker)
      })
    },
    async close() {
      const running = worker
      if (!running) return
      worker = null
      await new Promise<void>((resolve) => {
        closed = resolve
        running.postMessage({ type: 'close' } satisfies ToWorker)
      })
      running.terminate()
    },
  }
}
