import { conversationFor, type ConversationPage, type ConversationRecord } from '../src/conversations/model'
import type { Message, MessagePage } from '../src/messages/model'
import type { ListedUser, User } from '../src/users/model'
import { displayName } from '../src/users/service'
import { emojiNames } from './emoji'
import { html, join, type SafeHtml } from './html'
import { cssId, page } from './layout'
import { excerpt, messageItem, messagesMerge, positionMark, type MessageState, type Viewer } from './message'
import { nameOf, personName } from './people'
import { presenceDot, typingLine } from './presence'
import { searchBox, type SearchView } from './search'

const memberCount = (n: number) => `${n} member${n === 1 ? '' : 's'}`

/** A conversation's name as `viewerId` sees it: 👥 and the title for a group, the other person for a 1-on-1. */
function conversationName(record: ConversationRecord, viewerId: string): SafeHtml {
  const view = conversationFor(record, viewerId)
  return view.is_group ? html`<span class="group-icon" aria-label="Group">👥</span> ${view.display_name}` : html`${view.display_name}`
}

/** How many messages of others the viewer has not read; hidden at 0 (and, by the page's style, for the open conversation). */
const unreadBadge = (count: number): SafeHtml =>
  html`<span class="unread" data-count="${count}"${count > 0 ? html` role="status" aria-label="${count} unread"` : ''}>${count > 0 ? (count > 999 ? '999+' : String(count)) : ''}</span>`

/** One row of the Conversations list, with the viewer's unread count: the server's, on every device. */
export function conversationRow(record: ConversationRecord, viewerId: string, unreadCount = 0): SafeHtml {
  return html`<li id="conv-${record.id}" class="conversation">
  <a href="/c/${record.id}">
    <span class="conversation-name">${conversationName(record, viewerId)}</span>
    <span class="member-count">${memberCount(record.members.length)}</span>
    ${unreadBadge(unreadCount)}
  </a>
</li>`
}

const conversationList = (records: ConversationPage['conversations'], viewerId: string): SafeHtml => join(records.map((r) => conversationRow(r, viewerId, r.read.unreadCount)))

/** The viewer's unread count in a conversation's row, wherever the row is in their list. */
const badgeUpdate = (conversationId: string, count: number): SafeHtml =>
  html`<hx-partial hx-target="#conv-${conversationId} .unread" hx-swap="outerHTML">${unreadBadge(count)}</hx-partial>`

/**
 * Under the newest message: who else has read up to it (their read position is at the
 * conversation's newest seq or past it). Empty when nobody has, or there is no message.
 */
export function seenBy(viewer: Viewer, reads: ReadonlyMap<string, number>): SafeHtml {
  const { record } = viewer
  const seen = record.lastSeq === 0 ? [] : record.members.filter((m) => m.id !== viewer.id && (reads.get(m.id) ?? 0) >= record.lastSeq)
  return html`<p id="seen-${record.id}" class="seen-by" aria-live="polite">${seen.length > 0 ? html`Seen by ${join(seen.map((m, i) => html`${i > 0 ? ', ' : ''}<bdi>${displayName(m)}</bdi>`))}` : ''}</p>`
}

const seenByUpdate = (viewer: Viewer, reads: ReadonlyMap<string, number>): SafeHtml =>
  html`<hx-partial hx-target="#seen-${viewer.record.id}" hx-swap="outerHTML">${seenBy(viewer, reads)}</hx-partial>`

/**
 * Below the Conversations list while more pages follow: htmx appends the next page to the list
 * and replaces this control; without JavaScript it is a link to a page whose sidebar shows it.
 */
function loadMoreConversations(nextCursor: string | null, oob = false): SafeHtml {
  const oobAttr = oob ? html` hx-swap-oob="outerHTML"` : ''
  if (nextCursor === null) return html`<div id="load-more-conversations"${oobAttr}></div>`
  return html`<div id="load-more-conversations"${oobAttr}>
  <a class="load-more" href="/?cursor=${nextCursor}" hx-get="/ui/sidebar?cursor=${nextCursor}" hx-swap="none">Load more conversations</a>
</div>`
}

/**
 * A page of the Conversations list as a fragment: the first page replaces the list (after a
 * reconnect), a later one is appended to it; the Load more control follows either way.
 */
export function conversationPage(page: ConversationPage, viewerId: string, append: boolean): string {
  return html`<hx-partial hx-target="#conversation-list" hx-swap="${append ? 'beforeend' : 'innerHTML'}">${conversationList(page.conversations, viewerId)}</hx-partial>
${loadMoreConversations(page.nextCursor, true)}`.value
}

function userRow(user: ListedUser): SafeHtml {
  return html`<li>
  <form method="post" action="/ui/direct">
    <input type="hidden" name="user_id" value="${user.id}">
    <button type="submit" class="user">${presenceDot(user)}${personName(user)}</button>
  </form>
</li>`
}

/** Messages of a page, a catch-up or an answer, merged into the open list (see messagesMerge). */
export const messagesUpsert = (viewer: Viewer, messages: readonly Message[], opts: { existing?: boolean; fresh?: boolean; states?: ReadonlyMap<string, MessageState> } = {}): SafeHtml =>
  messagesMerge(
    viewer.record.id,
    messages.map((m) => messageItem(m, viewer, opts.states?.get(m.id))),
    opts,
  )

/** "Load older" pages back from the oldest message shown. */
export function loadOlder(record: ConversationRecord, page: MessagePage, oob = false): SafeHtml {
  const first = page.messages[0]
  const oobAttr = oob ? html` hx-swap-oob="outerHTML"` : ''
  if (!page.has_more || !first) return html`<div id="load-older"${oobAttr}></div>`
  return html`<div id="load-older"${oobAttr}>
  <button type="button" class="load-older" hx-get="/c/${record.id}/messages?before=${first.seq}" hx-swap="none">Load older messages</button>
</div>`
}

export type ComposerState = {
  messageId: string
  content?: string
  error?: string
  /** The message this one will answer, and its sender (when still known). */
  replyTo?: { message: Message; sender?: User }
}

/**
 * The message form. Its message_id is made when the form is rendered and kept until a send
 * succeeds, so a double click or a resend after a reconnect stores one message. Replying, it says
 * to what, and Cancel (keeping what was typed) goes back to a plain message.
 */
export function composer(conversationId: string, state: ComposerState, oob = false): SafeHtml {
  const { replyTo } = state
  const keep = html`hx-include="#content, #composer-message-id" hx-swap="none"`
  return html`<form id="composer" class="composer" method="post" action="/c/${conversationId}/messages" hx-post="/c/${conversationId}/messages" hx-swap="none"${oob ? html` hx-swap-oob="outerHTML"` : ''}>
  <input type="hidden" id="composer-message-id" name="message_id" value="${state.messageId}">
  ${
    replyTo
      ? html`<input type="hidden" name="reply_to" value="${replyTo.message.id}">
  <div class="replying">
    <a class="quote" href="#msg-${replyTo.message.id}" data-reply-to="${replyTo.message.id}" data-reply-seq="${replyTo.message.seq}">
      <span class="quote-sender">Replying to ${replyTo.sender ? personName(replyTo.sender) : 'Unknown'}</span>
      <span class="quote-text">${replyTo.message.deleted_at === null ? excerpt(replyTo.message.content) : 'This message was deleted'}</span>
    </a>
    <a class="cancel-reply" href="/c/${conversationId}" hx-get="/c/${conversationId}/composer" ${keep} title="Cancel the reply" aria-label="Cancel the reply">×</a>
  </div>`
      : ''
  }
  ${state.error ? html`<p class="form-error" role="alert">${state.error}</p>` : ''}
  <label for="content" class="visually-hidden">Message</label>
  <textarea id="content" name="content" rows="2" placeholder="${replyTo ? 'Write a reply…' : 'Write a message…'}" title="Enter sends, Shift+Enter adds a line" required>${state.content ?? ''}</textarea>
  <button type="submit">Send</button>
</form>`
}

export type GroupFormState = { open?: boolean; error?: string; title?: string; usernames?: string }

function groupForm(state: GroupFormState): SafeHtml {
  return html`<details class="new-group" ${state.open ? html`open` : ''}>
  <summary>+ New Group Chat</summary>
  <form method="post" action="/ui/groups">
    ${state.error ? html`<p class="form-error" role="alert">${state.error}</p>` : ''}
    <label for="group-title">Group Name</label>
    <input id="group-title" name="title" required maxlength="100" value="${state.title ?? ''}">
    <label for="group-usernames">Participants <span class="optional">(usernames, comma-separated)</span></label>
    <input id="group-usernames" name="usernames" placeholder="bob, charlie, diana" value="${state.usernames ?? ''}">
    <button type="submit">Create Group</button>
  </form>
</details>`
}

/** What a group's header forms were sent with, shown again with the refusal. */
export type HeaderState = { error?: string; usernames?: string; title?: string; open?: 'members' | 'rename' }

/** Header forms are answered through the pane, which outlives the header a push may replace meanwhile. */
const answeredInPane = html`hx-target="#conversation" hx-swap="none"`

/** A group's Members popover: who is in it, Remove (for its creator), add by username, and Leave. */
function membersPanel(viewer: Viewer, state: HeaderState): SafeHtml {
  const { record } = viewer
  const creator = viewer.creatorId === viewer.id
  const members = record.members.map((member) => {
    const removable = creator && member.id !== viewer.id
    const url = `/c/${record.id}/members/${member.id}/remove`
    return html`<li>
  <span class="member-name">${personName(member)}${member.id === viewer.id ? html` <span class="tag">you</span>` : ''}${member.id === viewer.creatorId ? html` <span class="tag">creator</span>` : ''}</span>
  ${removable ? html`<form method="post" action="${url}" hx-post="${url}" ${answeredInPane}><button type="submit" class="link danger" aria-label="Remove ${displayName(member)}">Remove</button></form>` : ''}
</li>`
  })
  return html`<div id="members-${record.id}" class="popover panel members-panel" popover${state.open === 'members' ? html` data-open` : ''}>
  <h3>Members <span class="optional">${memberCount(record.members.length)}</span></h3>
  <ul class="member-list">${join(members)}</ul>
  <form class="add-members" method="post" action="/c/${record.id}/members" hx-post="/c/${record.id}/members" ${answeredInPane}>
    <label for="add-members-${record.id}">Add people <span class="optional">(usernames, comma-separated)</span></label>
    <div class="inline-form">
      <input id="add-members-${record.id}" name="usernames" placeholder="bob, charlie" value="${state.usernames ?? ''}" required>
      <button type="submit">Add</button>
    </div>
  </form>
  <form class="leave" method="post" action="/c/${record.id}/leave">
    <button type="submit" class="secondary danger">Leave group</button>
  </form>
</div>`
}

function renamePanel(viewer: Viewer, state: HeaderState): SafeHtml {
  const { record } = viewer
  return html`<div id="rename-${record.id}" class="popover panel rename-panel" popover${state.open === 'rename' ? html` data-open` : ''}>
  <form method="post" action="/c/${record.id}/rename" hx-post="/c/${record.id}/rename" ${answeredInPane}>
    <label for="rename-title-${record.id}">Group name</label>
    <div class="inline-form">
      <input id="rename-title-${record.id}" name="title" value="${state.title ?? record.title ?? ''}" maxlength="100" required>
      <button type="submit">Rename</button>
    </div>
  </form>
</div>`
}

/**
 * The open conversation's header: its name and size, for a group's members Members and Rename,
 * and for every member Export (a download of every message). Replaced whole when the group
 * changes (live, for every member's open page).
 */
export function paneHeader(viewer: Viewer, state: HeaderState = {}, oob = false): SafeHtml {
  const { record } = viewer
  const member = record.members.some((m) => m.id === viewer.id)
  const other = record.isGroup ? undefined : record.members.find((m) => m.id !== viewer.id)
  return html`<header id="header-${record.id}" class="pane-header"${oob ? html` hx-swap-oob="outerHTML"` : ''}>
  <a class="back" href="/" aria-label="Back to conversations">←</a>
  <h2>${other ? personName(other) : conversationName(record, viewer.id)}</h2>
  <p class="member-count">${memberCount(record.members.length)}</p>
  ${
    record.isGroup && member
      ? html`<div class="group-tools">
    <button type="button" class="tool" popovertarget="members-${record.id}">Members</button>
    <button type="button" class="tool" popovertarget="rename-${record.id}">Rename</button>
    ${membersPanel(viewer, state)}
    ${renamePanel(viewer, state)}
  </div>`
      : ''
  }
  ${member ? html`<a class="tool export" href="/c/${record.id}/export" download title="Every message, as NDJSON">Export</a>` : ''}
  ${state.error ? html`<p class="form-error header-error" role="alert">${state.error}</p>` : ''}
</header>`
}

/** What a viewer sees in place of the composer once they are no longer in the group. */
export function leftNotice(viewer: Viewer, by: string): SafeHtml {
  const text = by === viewer.id ? html`You left this group.` : html`You were removed from this group by ${nameOf(viewer.people, by)}.`
  return html`<p class="left-notice" role="status">${text} <a href="/">Back to your conversations</a></p>`
}

/** For a page whose viewer is no longer in the group (found on catching up): said in place of the composer. */
export function noLongerMember(conversationId: string): SafeHtml {
  return html`<hx-partial hx-target="#conversation[data-conversation-id='${conversationId}'] #composer" hx-swap="outerHTML"><p class="left-notice" role="status">You are no longer a member of this group. <a href="/">Back to your conversations</a></p></hx-partial>`
}

/** A refusal with no better place on the page: shown for a while at the bottom of the window. */
export const flash = (message: string): SafeHtml => html`<div id="flash" class="flash" hx-swap-oob="outerHTML"><p role="alert">${message}</p></div>`

/** The answer to the viewer's own change to a group: its row and header as they are now (or with the refusal), forms closed. */
export function groupAnswer(viewer: Viewer, state: HeaderState = {}): SafeHtml {
  const { record } = viewer
  return html`<hx-partial hx-target="#conv-${record.id} .conversation-name" hx-swap="innerHTML">${conversationName(record, viewer.id)}</hx-partial>
<hx-partial hx-target="#conv-${record.id} .member-count" hx-swap="innerHTML">${memberCount(record.members.length)}</hx-partial>
${paneHeader(viewer, state, true)}`
}

export type OpenConversation = {
  viewer: Viewer
  page: MessagePage
  composer: ComposerState
  header?: HeaderState
  /** Messages shown with a form of theirs open (an edit, a refusal). */
  states?: ReadonlyMap<string, MessageState>
  /** Every member's read position, for "Seen by". */
  reads: ReadonlyMap<string, number>
}

export type ChatView = {
  me: User
  nonce: string
  conversations: ConversationPage
  users: ListedUser[]
  open?: OpenConversation
  groupForm?: GroupFormState
  /** The search box's query and results (a search without JavaScript). */
  search?: SearchView
}

/** Rules that depend on the viewer, from ids only: own messages, the open row (its unread count is being read). */
function viewerStyle(me: User, openId: string | undefined): string {
  const meId = cssId(me.id)
  const open = openId ? cssId(openId) : null
  const rules: string[] = []
  if (meId) {
    rules.push(`.message[data-sender="${meId}"]{margin-left:auto;background:var(--mine);border-color:var(--mine-border)}`)
    rules.push(`.message[data-sender="${meId}"] .sender{display:none}`)
  }
  if (open) {
    rules.push(`#conv-${open} .unread{display:none}`)
    rules.push(`#conv-${open} > a{background:var(--active);font-weight:600}`)
  }
  return rules.join('\n')
}

/**
 * The open conversation. `data-event-seq` is where the page stands in its change stream (read
 * before its messages): public/app.js moves it on with every change applied and, after a dropped
 * connection, asks for the changes after it.
 */
function conversationPane(open: OpenConversation): SafeHtml {
  const { viewer } = open
  const { record } = viewer
  return html`<section id="conversation" class="conversation-pane" data-conversation-id="${record.id}" data-event-seq="${viewer.version}" aria-label="Conversation">
  ${paneHeader(viewer, open.header)}
  <div id="message-scroll" class="message-scroll">
    ${loadOlder(record, open.page)}
    <ol id="messages-${record.id}" class="message-list" aria-live="polite">${join(open.page.messages.map((m) => messageItem(m, viewer, open.states?.get(m.id))))}</ol>
    ${seenBy(viewer, open.reads)}
  </div>
  ${typingLine(record.id)}
  ${composer(record.id, open.composer)}
  ${emojiNames()}
</section>`
}

export function chatPage(view: ChatView): string {
  const { me } = view
  const body = html`<div class="app">
  <header class="topbar">
    <a class="brand" href="/">Pneumatic</a>
    <span class="me">${displayName(me)}</span>
    <form method="post" action="/ui/logout"><button type="submit" class="link">Logout</button></form>
  </header>
  <nav class="sidebar" aria-label="Conversations and people">
    ${searchBox(view.search)}
    ${groupForm(view.groupForm ?? {})}
    <h2>Conversations</h2>
    <ul id="conversation-list" class="conversation-list">${conversationList(view.conversations.conversations, me.id)}</ul>
    ${loadMoreConversations(view.conversations.nextCursor)}
    <h2>Users</h2>
    <ul class="user-list">${join(view.users.map(userRow))}</ul>
  </nav>
  <main class="main">
    ${view.open ? conversationPane(view.open) : html`<p class="empty">Pick a conversation, or click someone under Users to start one.</p>`}
  </main>
  <div id="flash" class="flash"></div>
  <div id="live" hx-ws:connect="/ws?format=html" hx-swap="none" hidden></div>
</div>`
  const title = view.open ? `${conversationFor(view.open.viewer.record, me.id).display_name} · Pneumatic` : 'Pneumatic'
  return page({ title, nonce: view.nonce, style: viewerStyle(me, view.open?.viewer.record.id), body, interactive: true })
}

// ---- Live pushes and catch-up ------------------------------------------------------------------
// What a viewer's open pages receive for each change of a conversation (ui/push.ts), and what a page
// fetches after a dropped connection (GET /c/{id}/events): the same fragments. Targets a page lacks
// (another conversation open, an older message not loaded) are skipped by htmx.

/** The row of the conversation moves to the top of the list, with the viewer's unread count. */
function rowToTop(record: ConversationRecord, viewerId: string, unreadCount: number): SafeHtml {
  return html`<div id="conv-${record.id}" hx-swap-oob="delete"></div>
<hx-partial hx-target="#conversation-list" hx-swap="afterbegin">${conversationRow(record, viewerId, unreadCount)}</hx-partial>`
}

/** What a push says of reads: the viewer's unread count, and every member's read position. */
export type PushReading = { unread: number; reads: ReadonlyMap<string, number> }

/**
 * The group's name and size in its row, and its open header, as they are now (the row kept in
 * place, so its unread dot stays; the header keeps what its viewer is typing in it).
 */
function groupChanged(viewer: Viewer): SafeHtml {
  const { record } = viewer
  return html`<hx-partial hx-target="#conv-${record.id} .conversation-name" hx-swap="innerHTML">${conversationName(record, viewer.id)}</hx-partial>
<hx-partial hx-target="#conv-${record.id} .member-count" hx-swap="innerHTML">${memberCount(record.members.length)}</hx-partial>
<hx-partial hx-target="#header-${record.id}" hx-swap="refresh">${paneHeader(viewer)}</hx-partial>`
}

/**
 * A message sent: the conversation's row moves to the top of the list with the viewer's unread
 * count, the message joins the list if that conversation is open, and "Seen by" starts again.
 */
export function messagePush(viewer: Viewer, message: Message, eventSeq: number, reading: PushReading): string {
  return html`${rowToTop(viewer.record, viewer.id, reading.unread)}
${messagesUpsert(viewer, [message])}
${seenByUpdate(viewer, reading.reads)}
${positionMark(viewer.record.id, eventSeq - 1, eventSeq)}`.value
}

/** A message edited, deleted or reacted to: replaced where it is shown; a deletion may change the unread count. */
export function messageChangedPush(viewer: Viewer, message: Message, eventSeq: number, unread?: number): string {
  return html`${messagesUpsert(viewer, [message], { existing: true })}
${unread === undefined ? '' : badgeUpdate(viewer.record.id, unread)}
${positionMark(viewer.record.id, eventSeq - 1, eventSeq)}`.value
}

/** Someone read: the viewer's unread count (cleared on all their pages when it was them) and "Seen by". */
export function readPush(viewer: Viewer, eventSeq: number, reading: PushReading): string {
  return html`${badgeUpdate(viewer.record.id, reading.unread)}
${seenByUpdate(viewer, reading.reads)}
${positionMark(viewer.record.id, eventSeq - 1, eventSeq)}`.value
}

/** A group renamed, or someone added or removed, for those in it after the change. */
export function groupPush(viewer: Viewer, eventSeq: number, added?: { unread: number }): string {
  return html`${added ? rowToTop(viewer.record, viewer.id, added.unread) : ''}
${groupChanged(viewer)}
${positionMark(viewer.record.id, eventSeq - 1, eventSeq)}`.value
}

/**
 * For the one who left or was removed: the row leaves their list, and an open page of it says so
 * in place of the composer; nothing of the group reaches them after this.
 */
export function leftPush(viewer: Viewer, by: string): string {
  const { record } = viewer
  return html`<div id="conv-${record.id}" hx-swap-oob="delete"></div>
<hx-partial hx-target="#header-${record.id}" hx-swap="refresh">${paneHeader(viewer)}</hx-partial>
<hx-partial hx-target="#conversation[data-conversation-id='${record.id}'] #composer" hx-swap="outerHTML">${leftNotice(viewer, by)}</hx-partial>`.value
}

/**
 * What a page missed, from its position on: the messages it concerns as they are now (new ones
 * added, others replaced where shown), the group's header when it changed, the viewer's unread
 * count and "Seen by" as they are now, and the new position.
 */
export function catchUp(
  viewer: Viewer,
  after: number,
  through: number,
  changed: { added: readonly Message[]; replaced: readonly Message[]; group: boolean },
  reading: PushReading,
): string {
  return html`${messagesUpsert(viewer, changed.added)}
${messagesUpsert(viewer, changed.replaced, { existing: true })}
${changed.group ? groupChanged(viewer) : ''}
${badgeUpdate(viewer.record.id, reading.unread)}
${seenByUpdate(viewer, reading.reads)}
${positionMark(viewer.record.id, after, through)}`.value
}
