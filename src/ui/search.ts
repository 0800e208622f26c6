import type { SearchView } from '../../views/search'
import type { ConversationRecord } from '../conversations/model'
import * as conversations from '../conversations/service'
import type { AppDeps } from '../deps'
import * as search from '../search/service'
import { describeIssues, DomainError } from '../shared/errors'
import type { User } from '../users/model'
import * as users from '../users/service'

/** The form's fields by their labels, for a refusal. */
const SEARCH_LABELS = { q: 'Search', cursor: 'More results' }

/**
 * What the search box shows for `q` (and the page after `cursor`), through the same service as
 * GET /search, with the conversations and senders of the results to name them; an empty box shows
 * nothing. A refusal (422 on q, 503 search_timeout) is shown in its place, with its status.
 */
export async function searchView(deps: AppDeps, me: User, q: string, cursor?: string): Promise<{ view: SearchView; status: number }> {
  const view: SearchView = { q, conversations: new Map(), people: new Map(), viewerId: me.id }
  if (q.trim() === '' && cursor === undefined) return { view, status: 200 }
  try {
    const page = await search.search(deps, me, { q, ...(cursor === undefined ? {} : { cursor }) })
    const found = new Map<string, ConversationRecord>()
    for (const id of new Set(page.results.map((r) => r.message.conversation_id))) {
      const record = await conversations.recordById(deps.store, id)
      if (record) found.set(id, record)
    }
    const senders = await users.byIds(deps.store, [...new Set(page.results.map((r) => r.message.sender_id))])
    return { view: { ...view, page, conversations: found, people: new Map(senders.map((u) => [u.id, u])) }, status: 200 }
  } catch (error) {
    if (!(error instanceof DomainError)) throw error
    return { view: { ...view, error: error.details?.length ? describeIssues(error.details, SEARCH_LABELS) : error.message }, status: error.status }
  }
}
