/**
 * The message writer's thread (see writer.ts): its own connection to the database file, committing
 * one batch per message it is sent and answering with the outcomes and the statements' timings.
 */
import type { Database } from 'bun:sqlite'
import { collectQueries, connect, observeQueries, type Db } from '../db/client'
import { commitBatch } from './store.sqlite'
import type { ToWorker } from './store.sqlite-worker'

declare const self: Worker

let connection: { db: Db; sqlite: Database } | null = null
const timings = collectQueries()

self.onmessage = ({ data }: MessageEvent<ToWorker>) => {
  switch (data.type) {
    case 'open':
      connection = connect(data.path)
      observeQueries(connection.sqlite, timings)
      return
    case 'commit': {
      const outcomes = commitBatch(connection!.db, data.jobs)
      postMessage({ type: 'committed', outcomes, timings: timings.take() })
      return
    }
    case 'close':
      connection?.sqlite.close()
      connection = null
      postMessage({ type: 'closed' })
  }
}
