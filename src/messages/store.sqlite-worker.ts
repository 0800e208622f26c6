import type { Database } from 'bun:sqlite'
import { AsyncResource } from 'node:async_hooks'
import { reportFailure, reportQueries, type QueryTimings } from '../db/client'
import type { WriteJob, WriteOutcome } from './store'

/**
 * MESSAGE_WRITER=worker: a SQLite database's batches are committed in a Worker with its own
 * connection, so a COMMIT's fsync never blocks the event loop. It needs a core of its own to pay
 * off (README, Performance).
 */
export type WorkerCommitter = {
  commit(jobs: readonly WriteJob[]): Promise<WriteOutcome[]>
  close(): Promise<void>
}

type FromWorker = { type: 'committed'; outcomes: WriteOutcome[]; timings: QueryTimings } | { type: 'closed' }
export type ToWorker = { type: 'open'; path: string } | { type: 'commit'; jobs: readonly WriteJob[] } | { type: 'close' }

/**
 * Commits in a Worker (store.sqlite-worker-thread.ts) on its own connection to the same file. Its statement
 * and transaction timings, and its failures, are reported to this connection's observers
 * (metrics, readiness), as if run here.
 * A worker that dies fails its batch; the next batch starts a new one.
 */
export function workerCommitter(sqlite: Database, path: string): WorkerCommitter {
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
    const started = new Worker(new URL('./store.sqlite-worker-thread.ts', import.meta.url).href) as unknown as Bun.Worker
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
