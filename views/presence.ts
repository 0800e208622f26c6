import type { ListedUser, User } from '../src/users/model'
import { displayName } from '../src/users/service'
import { html, join, type SafeHtml } from './html'

/**
 * Typing and presence in the web UI: the page's parts, and what its live socket pushes into them
 * (ui/signals.ts). public/presence.js applies the pushes: a typing line is shown for
 * TYPING_SHOWN_SECONDS, or until that person's message arrives; a dot follows its person.
 */

/** As the API says to clients (README, WebSocket): a typing frame is shown this long. */
const TYPING_SHOWN_SECONDS = 5

/** A green dot while someone is online (every dot of theirs on the page follows each push). */
export function presenceDot(user: Pick<ListedUser, 'id' | 'online'>): SafeHtml {
  return html`<span class="presence" data-user="${user.id}" data-online="${String(user.online)}" title="${user.online ? 'Online' : 'Offline'}" aria-hidden="true"></span>`
}

/** Under the open conversation: who in it is typing, for screen readers too. */
export const typingLine = (conversationId: string): SafeHtml =>
  html`<p id="typing-${conversationId}" class="typing" role="status" aria-live="polite" data-shown-ms="${TYPING_SHOWN_SECONDS * 1000}"></p>`

/** Someone is typing in a conversation: into its typing line, where that conversation is open. */
export const typingPush = (conversationId: string, user: User): string =>
  html`<hx-partial hx-target="#typing-${conversationId}" hx-swap="typing"><span class="typist" data-user="${user.id}"><bdi>${displayName(user)}</bdi> is typing…</span></hx-partial>`.value

/** Someone came online or went offline (or, after a dropped connection, everyone as they are): each of their dots on the page. */
export const presencePush = (people: ReadonlyArray<Pick<ListedUser, 'id' | 'online'>>): string =>
  html`<hx-partial hx-target="#live" hx-swap="presence">${join(people.map((p) => html`<i data-user="${p.id}" data-online="${String(p.online)}"></i>`))}</hx-partial>`.value
