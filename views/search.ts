import type { ConversationRecord } from '../src/conversations/model'
import type { SearchPage } from '../src/search/model'
import type { User } from '../src/users/model'
import { html, join, SafeHtml } from './html'
import { nameOf, personName } from './people'

/**
 * What the search box shows: the query as typed, and its answer (results, or why it was refused).
 * `conversations` and `people` name the results' conversations and senders.
 */
export type SearchView = {
  q: string
  page?: SearchPage
  error?: string
  conversations: ReadonlyMap<string, ConversationRecord>
  people: ReadonlyMap<string, User>
  /** The viewer's user id: a 1-on-1 is named after the other person. */
  viewerId: string
}

/** Where a result was said: a group's title, or the other person of a 1-on-1. */
function where(view: SearchView, conversationId: string): SafeHtml {
  const record = view.conversations.get(conversationId)
  if (!record) return html`A conversation`
  if (record.isGroup) return html`<span class="group-icon" aria-label="Group">👥</span> ${record.title ?? ''}`
  const other = record.members.find((m) => m.id !== view.viewerId) ?? record.members[0]
  return other ? personName(other) : html`A conversation`
}

const searchUrl = (q: string, cursor?: string) => `/ui/search?${new URLSearchParams({ q, ...(cursor ? { cursor } : {}) })}`

/**
 * One page of results as list items, and after them the control for the next page: htmx puts the
 * next page in its place; without JavaScript it is a link to a page that shows that one.
 */
export function searchItems(view: SearchView): SafeHtml {
  const page = view.page
  if (!page) return html``
  const items = page.results.map(({ message, snippet }) => {
    const href = `/c/${message.conversation_id}#msg-${message.id}`
    // The snippet is HTML the search service made: the message's text escaped, then its matches marked.
    return html`<li class="search-result">
  <a href="${href}" data-message-id="${message.id}" data-conversation-id="${message.conversation_id}">
    <span class="search-where"><span class="search-conversation">${where(view, message.conversation_id)}</span> · <span class="search-sender">${nameOf(view.people, message.sender_id)}</span></span>
    <span class="snippet">${new SafeHtml(snippet)}</span>
    <time datetime="${message.created_at}">${message.created_at.slice(0, 16).replace('T', ' ')} UTC</time>
  </a>
</li>`
  })
  const more = page.next_cursor
    ? html`<li class="search-more"><a class="load-more" href="${searchUrl(view.q, page.next_cursor)}" hx-get="${searchUrl(view.q, page.next_cursor)}" hx-target="closest li" hx-swap="outerHTML">More results</a></li>`
    : ''
  return html`${join(items)}${more}`
}

/** A refusal of the next page, in the place of its control. */
export const searchMoreRefused = (error: string): SafeHtml => html`<li class="search-more"><p class="form-error" role="alert">${error}</p></li>`

/** What is shown under the search box: the results, that there are none, or why the query was refused. */
export function searchResults(view: SearchView): SafeHtml {
  if (view.error) return html`<p class="form-error" role="alert">${view.error}</p>`
  if (!view.page) return html``
  if (view.page.results.length === 0) return html`<p class="search-empty" role="status">No messages found for “${view.q}”</p>`
  return html`<ol class="search-list" aria-label="Search results">${searchItems(view)}</ol>`
}

/**
 * The search box, at the top of the sidebar: it searches as one types (htmx, the newest query
 * replacing any still on its way), and on Enter; without JavaScript it is a form that loads a page
 * with the results.
 */
export function searchBox(view?: SearchView): SafeHtml {
  return html`<search class="search-box">
  <form id="search-form" method="get" action="/ui/search" hx-get="/ui/search" hx-trigger="submit, input changed delay:250ms" hx-target="#search-results" hx-swap="innerHTML" hx-sync="this:replace">
    <label for="search-q" class="visually-hidden">Search messages</label>
    <input id="search-q" type="search" name="q" placeholder="Search messages…" maxlength="200" autocomplete="off" value="${view?.q ?? ''}">
  </form>
  <div id="search-results" class="search-results" aria-live="polite">${view ? searchResults(view) : ''}</div>
</search>`
}
