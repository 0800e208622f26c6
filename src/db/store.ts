import type { AuthStore } from '../auth/store'
import type { DatabaseLocation, MessageWriterKind } from '../config'
import type { ConversationStore } from '../conversations/store'
import type { MessageStore } from '../messages/store'
import type { SearchStore } from '../search/store'
import type { UserStore } from '../users/store'
import type { QueryObserver } from './client'

/**
 * The storage seam: every query of every context, behind one async interface per context, with an
 * implementation per engine (SQLite by default, PostgreSQL). Services see only this; nothing
 * outside the stores and db/ imports a driver.
 */
export type Store = {
  engine: 'sqlite' | 'postgres'
  users: UserStore
  auth: AuthStore
  conversations: ConversationStore
  messages: MessageStore
  search: SearchStore
  /** Resolves when the database can be read and written now (readiness); otherwise rejects, with a StorageUnavailable saying why when it knows. */
  probe(): Promise<void>
  /** Told how long each statement and transaction took, and what failed (metrics, tracing). */
  observe(observer: QueryObserver): void
  /** Closes the connections (and a SQLite writer's worker). */
  close(): Promise<void>
}

export type StoreOptions = { messageWriter?: MessageWriterKind }

/** Opens (creating and migrating as needed) the database DATABASE_URL names; a ConfigError when it cannot. */
export async function openStore(location: DatabaseLocation, options: StoreOptions = {}): Promise<Store> {
  if (location.kind === 'postgres') {
    const { openPostgresStore } = await import('./store.postgres')
    return openPostgresStore(location.url, location.poolSize)
  }
  const { openSqliteStore } = await import('./store.sqlite')
  return openSqliteStore(location.path, options)
}
