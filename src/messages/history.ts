import * as conversationService from '../conversations/service'
import type { Store } from '../db/store'
import { validator } from '../shared/validation'
import type { User } from '../users/model'
import { HISTORY_DEFAULT_LIMIT, HistoryQuery, toMessage, type MessagePage } from './model'
import type { PageRange } from './store'

const checkHistory = validator(HistoryQuery)

/**
 * The rules every history page follows, whether it is served as objects or as JSON: the query's
 * validation, the default limit, membership, and which end of the range the page is taken from.
 * An absent bound is the widest one.
 */
async function pageRange(store: Store, actor: User, conversationId: string, query: unknown): Promise<PageRange> {
  const { limit = HISTORY_DEFAULT_LIMIT, before, after } = checkHistory(query)
  await conversationService.requireMember(store, actor, conversationId)
  return { conversationId, from: after === undefined ? 'newest' : 'oldest', after: after ?? 0, before: before ?? Number.MAX_SAFE_INTEGER, limit }
}

/**
 * A page of history, oldest first. Without `after`: the newest `limit` messages (before `before`,
 * if given). With `after`: the oldest `limit` messages after it (up to `before`, if given), to
 * catch up from the last seq a client saw.
 */
export async function history(store: Store, actor: User, conversationId: string, query: unknown): Promise<MessagePage> {
  const { rows, hasMore } = await store.messages.page(await pageRange(store, actor, conversationId, query))
  return { messages: rows.map(toMessage), has_more: hasMore }
}

/** The same page as history(), as the JSON text of a MessagePage (for the REST API). */
export async function historyJson(store: Store, actor: User, conversationId: string, query: unknown): Promise<string> {
  return store.messages.pageJson(await pageRange(store, actor, conversationId, query))
}
