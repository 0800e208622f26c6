import type { ConversationRecord } from '../src/conversations/model'
import type { Message } from '../src/messages/model'
import type { User } from '../src/users/model'
import { QUICK_REACTIONS } from './emoji'
import { html, join, type SafeHtml } from './html'
import { nameOf, plainName } from './people'

/** Who looks at a conversation's messages, and what the page knows beside them. */
export type Viewer = {
  /** The viewer's user id. */
  id: string
  record: ConversationRecord
  /** The creator of the conversation: in a group, they may delete anyone's message. */
  creatorId: string
  /** Everyone the messages name (senders, reactors, the quoted), members or not. */
  people: ReadonlyMap<string, User>
  /** The messages replied to, by id, for their quotes. */
  quotes: ReadonlyMap<string, Message>
  /**
   * An event_seq of the conversation reached before the messages were read: each shows its state
   * as of that change or later. Of two renders of a message, the page keeps the one with the
   * larger version (public/app.js), so a late answer never undoes a newer change.
   */
  version: number
}

/** A message's own form state, when a form of it was sent and is shown again. */
export type MessageState = { editing?: boolean; draft?: string; error?: string }

const EXCERPT_CHARACTERS = 140

/** The start of a text on one line, for quotes. */
export function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim()
  const characters = Array.from(flat)
  return characters.length > EXCERPT_CHARACTERS ? `${characters.slice(0, EXCERPT_CHARACTERS).join('').trimEnd()}…` : flat
}

/** Whether the viewer may delete the message: its sender, or the creator of its group (the rule is messages.remove's). */
const mayDelete = (message: Message, viewer: Viewer) => message.sender_id === viewer.id || (viewer.record.isGroup && viewer.creatorId === viewer.id)

const reactionsUrl = (message: Message) => `/ui/messages/${message.id}/reactions`

/**
 * Where a message's forms and links are answered: nowhere in particular (the answer carries its
 * own targets), through the conversation's list, which outlives the message element: a push
 * that replaces the message before the answer arrives does not make htmx drop the answer.
 */
const answered = (viewer: Viewer) => html`hx-target="#messages-${viewer.record.id}" hx-swap="none"`

/** What a reply quotes: a link to the original, which scrolls to it and highlights it. */
function quote(message: Message, viewer: Viewer): SafeHtml {
  if (message.reply_to === null) return html``
  const original = viewer.quotes.get(message.reply_to)
  const text = !original ? 'An earlier message' : original.deleted_at !== null ? 'This message was deleted' : excerpt(original.content)
  return html`<a class="quote" href="#msg-${message.reply_to}" data-reply-to="${message.reply_to}" data-reply-seq="${original?.seq ?? ''}" title="Show the message this replies to">
    ${original ? html`<span class="quote-sender">${nameOf(viewer.people, original.sender_id)}</span>` : ''}
    <span class="quote-text">${text}</span>
  </a>`
}

/** The reactions as chips with counts; a chip toggles the viewer's own reaction with its emoji. */
function reactions(message: Message, viewer: Viewer): SafeHtml {
  if (message.reactions.length === 0) return html``
  const url = reactionsUrl(message)
  return html`<ul class="reactions" aria-label="Reactions">${join(
    message.reactions.map((reaction) => {
      const mine = reaction.user_ids.includes(viewer.id)
      const who = reaction.user_ids.map((id) => plainName(viewer.people, id)).join(', ')
      return html`<li><form method="post" action="${url}" hx-post="${url}" ${answered(viewer)}>
  <input type="hidden" name="emoji" value="${reaction.emoji}">
  <input type="hidden" name="added" value="${mine ? '0' : '1'}">
  <button type="submit" class="chip${mine ? ' mine' : ''}" aria-pressed="${mine ? 'true' : 'false'}" title="${who}" aria-label="${reaction.emoji} ${reaction.user_ids.length}: ${who}"><span class="emoji">${reaction.emoji}</span> <span class="count">${reaction.user_ids.length}</span></button>
</form></li>`
    }),
  )}</ul>`
}

/** The place of the content while its sender edits it: Enter saves, Esc cancels (public/app.js). */
function editForm(message: Message, viewer: Viewer, draft: string): SafeHtml {
  const url = `/ui/messages/${message.id}/edit`
  return html`<form class="edit-form" method="post" action="${url}" hx-post="${url}" ${answered(viewer)}>
  <label for="edit-${message.id}" class="visually-hidden">Edit message</label>
  <textarea id="edit-${message.id}" name="content" rows="2" required autofocus>${draft}</textarea>
  <div class="edit-buttons">
    <span class="hint">Enter saves · Esc cancels</span>
    <a class="cancel" href="/c/${viewer.record.id}#msg-${message.id}" hx-get="/ui/messages/${message.id}" ${answered(viewer)}>Cancel</a>
    <button type="submit">Save</button>
  </div>
</form>`
}

/**
 * What one can do with a message, shown on hover or focus (a tap focuses it): react, reply, and
 * for its sender edit, for its sender or the group's creator delete. React and Delete open
 * popovers (native: no script needed, Esc or a click outside closes them); Delete asks first.
 */
function actions(message: Message, viewer: Viewer): SafeHtml {
  const { id } = message
  const conversationId = viewer.record.id
  const url = reactionsUrl(message)
  const mine = message.sender_id === viewer.id
  return html`<div class="actions" role="toolbar" aria-label="Message actions">
  <button type="button" class="action react" popovertarget="react-${id}" title="React" aria-label="React"></button>
  <a class="action reply" href="/c/${conversationId}?reply_to=${id}#composer" hx-get="/c/${conversationId}/composer?reply_to=${id}" hx-include="#content, #composer-message-id" ${answered(viewer)} title="Reply" aria-label="Reply"></a>
  ${mine ? html`<a class="action edit" href="/c/${conversationId}?edit=${id}#msg-${id}" hx-get="/ui/messages/${id}/edit" ${answered(viewer)} title="Edit" aria-label="Edit"></a>` : ''}
  ${mayDelete(message, viewer) ? html`<button type="button" class="action delete" popovertarget="delete-${id}" title="Delete" aria-label="Delete"></button>` : ''}
  <div id="react-${id}" class="popover picker" popover>
    <form class="quick-reactions" method="post" action="${url}" hx-post="${url}" ${answered(viewer)}>
      <input type="hidden" name="added" value="1">
      ${join(QUICK_REACTIONS.map((emoji) => html`<button type="submit" name="emoji" value="${emoji}" class="emoji" title="React with ${emoji}">${emoji}</button>`))}
    </form>
    <form class="any-reaction" method="post" action="${url}" hx-post="${url}" ${answered(viewer)}>
      <input type="hidden" name="added" value="1">
      <input id="react-search-${id}" name="emoji" list="emoji-names" placeholder="Search emoji…" aria-label="Search or type an emoji" autocomplete="off" maxlength="64" required>
      <button type="submit">Add</button>
    </form>
  </div>
  ${
    mayDelete(message, viewer)
      ? html`<div id="delete-${id}" class="popover confirm" popover>
    <p>Delete this message for everyone?</p>
    <form method="post" action="/ui/messages/${id}/delete" hx-post="/ui/messages/${id}/delete" ${answered(viewer)}>
      <button type="button" class="secondary" popovertarget="delete-${id}" popovertargetaction="hide">Cancel</button>
      <button type="submit" class="danger">Delete</button>
    </form>
  </div>`
      : ''
  }
</div>`
}

/**
 * One message as the viewer sees it: the same in the full page, the answer to an action, a page
 * of history, a catch-up and a live push. A deleted one keeps its place, without content or actions.
 */
export function messageItem(message: Message, viewer: Viewer, state: MessageState = {}): SafeHtml {
  const deleted = message.deleted_at !== null
  const editing = state.editing === true && !deleted && message.sender_id === viewer.id
  const sender = viewer.record.isGroup ? nameOf(viewer.people, message.sender_id) : null
  let body: SafeHtml
  if (deleted) body = html`<p class="deleted-note">This message was deleted</p>`
  else if (editing) body = editForm(message, viewer, state.draft ?? message.content)
  else body = html`<p class="content">${message.content}</p>`
  return html`<li id="msg-${message.id}" class="message${deleted ? ' deleted' : ''}" data-seq="${message.seq}" data-sender="${message.sender_id}" data-version="${viewer.version}" tabindex="0">
  ${sender === null ? '' : html`<span class="sender">${sender}</span>`}
  ${deleted ? '' : quote(message, viewer)}
  ${body}
  ${state.error ? html`<p class="form-error" role="alert">${state.error}</p>` : ''}
  ${deleted ? '' : reactions(message, viewer)}
  <footer class="meta">${!deleted && message.edited_at !== null ? html`<span class="edited" title="Edited ${message.edited_at}">(edited)</span> ` : ''}<time datetime="${message.created_at}">${message.created_at.slice(11, 16)} UTC</time></footer>
  ${deleted ? '' : actions(message, viewer)}
</li>`
}

/**
 * Messages merged into the open list of their conversation by id (replaced, never doubled; the
 * newer version kept) and kept in seq order (public/app.js). `existing`: only replace ones shown
 * (an edit, a deletion, a reaction to an older message not loaded is not added to the page).
 * `fresh`: the answer to the viewer's own action, which closes its forms rather than keeping them.
 */
export function messagesMerge(conversationId: string, items: readonly SafeHtml[], opts: { existing?: boolean; fresh?: boolean } = {}): SafeHtml {
  if (items.length === 0) return html``
  return html`<hx-partial hx-target="#messages-${conversationId}" hx-swap="merge${opts.existing ? ' existing' : ''}${opts.fresh ? ' fresh' : ''}">${join(items)}</hx-partial>`
}

/**
 * Where the page stands in a conversation's change stream: it has now applied the changes after
 * `after` up to `through` (public/app.js keeps the highest number below which it has them all, and
 * catches up from there after a reconnect).
 */
export const positionMark = (conversationId: string, after: number, through: number): SafeHtml =>
  html`<hx-position conversation="${conversationId}" after="${after}" through="${through}"></hx-position>`
