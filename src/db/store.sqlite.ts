import type { Database } from 'bun:sqlite'
import { sqliteAuthStore } from '../auth/store.sqlite'
import { sqliteConversationStore } from '../conversations/store.sqlite'
import { sqliteMessageStore } from '../messages/store.sqlite'
import { workerCommitter } from '../messages/store.sqlite-worker'
import { sqliteSearchStore } from '../search/store.sqlite'
import { sqliteUserStore } from '../users/store.sqlite'
import { observeQueries, openDatabase, type Db } from './client'
import type { Store, StoreOptions } from './store'

/** The SQLite store; `db` and `sqlite` are for db/ and the tests' SQLite-only fixtures, never for services. */
export type SqliteStore = Store & { engine: 'sqlite'; db: Db; sqlite: Database; path: string }

/**
 * A SQLite database as a Store. MESSAGE_WRITER=worker commits messages in a worker thread with its
 * own connection; an in-memory database exists only on its own connection, so it is always
 * written inline.
 */
export function openSqliteStore(path: string, options: StoreOptions = {}): SqliteStore {
  const { db, sqlite, storage, close } = openDatabase(path)
  const worker = options.messageWriter === 'worker' && path !== ':memory:' ? workerCommitter(sqlite, path) : null
  return {
    engine: 'sqlite',
    db,
    sqlite,
    path,
    users: sqliteUserStore(db),
    auth: sqliteAuthStore(db),
    conversations: sqliteConversationStore(db),
    messages: sqliteMessageStore(db, worker ? (jobs) => worker.commit(jobs) : undefined),
    search: sqliteSearchStore(db),
    probe: () => storage.probe(),
    observe: (observer) => observeQueries(sqlite, observer),
    async close() {
      await worker?.close()
      close()
    },
  }
}
