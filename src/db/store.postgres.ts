import { postgresAuthStore } from '../auth/store.postgres'
import { postgresConversationStore } from '../conversations/store.postgres'
import { postgresMessageStore } from '../messages/store.postgres'
import { postgresSearchStore } from '../search/store.postgres'
import { postgresUserStore } from '../users/store.postgres'
import { openPostgres } from './postgres/connection'
import { observePostgres } from './postgres/observe'
import { postgresStorage } from './storage'
import type { Store } from './store'

/**
 * A PostgreSQL database as a Store: migrated (under an advisory lock) on open, with a pool of
 * `poolSize` connections. Several server processes may share it.
 */
export async function openPostgresStore(url: string, poolSize: number): Promise<Store> {
  const handle = await openPostgres(url, { poolSize })
  const storage = postgresStorage(handle)
  observePostgres(handle, storage.observer)
  const { db } = handle
  return {
    engine: 'postgres',
    users: postgresUserStore(db),
    auth: postgresAuthStore(db),
    conversations: postgresConversationStore(db),
    messages: postgresMessageStore(db),
    search: postgresSearchStore(db),
    probe: () => storage.probe(),
    observe: (observer) => observePostgres(handle, observer),
    close: () => handle.close(),
  }
}
