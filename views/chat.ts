import { conversationFor, type ConversationPage, type ConversationRecord } from '../src/conversations/model'
import type { Message, MessagePage } from '../src/messages/model'
import type { User } from '../src/users/model'
import { displayName } from '../src/users/service'
import { html, join, type SafeHtml } from './html'
import { cssId, page } from './layout'

const memberCount = (n: number) => `${n} member${n === 1 ? '' : 's'}`

/** A conversation's name as `viewerId` sees it: 👥 and the title for a group, the other person for a 1-on-1. */
function conversationName(record: ConversationRecord, viewerId: string): SafeHtml {
  const view = conversationFor(record, viewerId)
  return view.is_group ? html`<span class="group-icon" aria-label="Group">👥</span> ${view.display_name}` : html`${view.display_name}`
}

/**
 * One row of the Conversations list. Rows pushed live carry an unread dot; the page's own style
 * hides it for the open conversation and for messages the viewer sent.
 */
export function conversationRow(record: ConversationRecord, viewerId: string, opts: { unread?: boolean; lastSenderId?: string } = {}): SafeHtml {
  return html`<li id="conv-${record.id}" class="conversation" data-last-sender="${opts.lastSenderId ?? ''}">
  <a href="/c/${record.id}">
    <span class="conversation-name">${conversationName(record, viewerId)}</span>
    <span class="member-count">${memberCount(record.members.length)}</span>
    ${opts.unread ? html`<span class="unread-dot" role="status" aria-label="unread"></span>` : ''}
  </a>
</li>`
}

const conversationList = (records: ConversationRecord[], viewerId: string): SafeHtml => join(records.map((r) => conversationRow(r, viewerId)))

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

/**
 * Someone as others see them: the full name, isolated so its direction cannot reorder what
 * follows, then the @username, which nobody else can have (a full name can be copied); just the
 * username without a full name, so a name never shows without the username it belongs to.
 */
function personName(user: User): SafeHtml {
  return user.full_name ? html`<bdi>${user.full_name}</bdi> <span class="username">@${user.username}</span>` : html`${user.username}`
}

function userRow(user: User): SafeHtml {
  return html`<li>
  <form method="post" action="/ui/direct">
    <input type="hidden" name="user_id" value="${user.id}">
    <button type="submit" class="user">${personName(user)}</button>
  </form>
</li>`
}

/** One message, the same in the full page, the reply to a send, a page of history and a live push. */
export function messageItem(message: Message, sender: SafeHtml | null): SafeHtml {
  return html`<li id="msg-${message.id}" class="message" data-seq="${message.seq}" data-sender="${message.sender_id}">
  ${sender === null ? '' : html`<span class="sender">${sender}</span>`}
  <p class="content">${message.content}</p>
  <time datetime="${message.created_at}">${message.created_at.slice(11, 16)} UTC</time>
</li>`
}

/** The sender's name and @username in a group; none in a 1-on-1, whose header names the other person. */
export function senderNameIn(record: ConversationRecord, senderId: string): SafeHtml | null {
  if (!record.isGroup) return null
  const sender = record.members.find((m) => m.id === senderId)
  return sender ? personName(sender) : html`Unknown`
}

/** Messages merged into the open list by id (never doubled) and kept in seq order. */
export function messagesUpsert(record: ConversationRecord, messages: Message[]): SafeHtml {
  if (messages.length === 0) return html``
  return html`<hx-upsert hx-target="#messages-${record.id}" key="data-seq" sort>${join(messages.map((m) => messageItem(m, senderNameIn(record, m.sender_id))))}</hx-upsert>`
}

/** "Load older" pages back from the oldest message shown. */
export function loadOlder(record: ConversationRecord, page: MessagePage, oob = false): SafeHtml {
  const first = page.messages[0]
  const oobAttr = oob ? html` hx-swap-oob="outerHTML"` : ''
  if (!page.has_more || !first) return html`<div id="load-older"${oobAttr}></div>`
  return html`<div id="load-older"${oobAttr}>
  <button type="button" class="load-older" hx-get="/c/${record.id}/messages?before=${first.seq}" hx-swap="none">Load older messages</button>
</div>`
}

export type ComposerState = { messageId: string; content?: string; error?: string }

/**
 * The message form. Its message_id is made when the form is rendered and kept until a send
 * succeeds, so a double click or a resend after a reconnect stores one message.
 */
export function composer(record: ConversationRecord, state: ComposerState, oob = false): SafeHtml {
  return html`<form id="composer" class="composer" method="post" action="/c/${record.id}/messages" hx-post="/c/${record.id}/messages" hx-swap="none"${oob ? html` hx-swap-oob="outerHTML"` : ''}>
  <input type="hidden" name="message_id" value="${state.messageId}">
  ${state.error ? html`<p class="form-error" role="alert">${state.error}</p>` : ''}
  <label for="content" class="visually-hidden">Message</label>
  <textarea id="content" name="content" rows="2" placeholder="Write a message…" title="Enter sends, Shift+Enter adds a line" required>${state.content ?? ''}</textarea>
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

export type ChatView = {
  me: User
  nonce: string
  conversations: ConversationPage
  users: User[]
  open?: { record: ConversationRecord; page: MessagePage; composer: ComposerState }
  groupForm?: GroupFormState
}

/** Rules that depend on the viewer, from ids only: own messages, the open row, no unread dot for either. */
function viewerStyle(me: User, openId: string | undefined): string {
  const meId = cssId(me.id)
  const open = openId ? cssId(openId) : null
  const rules: string[] = []
  if (meId) {
    rules.push(`.message[data-sender="${meId}"]{margin-left:auto;background:var(--mine);border-color:var(--mine-border)}`)
    rules.push(`.message[data-sender="${meId}"] .sender{display:none}`)
    rules.push(`.conversation[data-last-sender="${meId}"] .unread-dot{display:none}`)
  }
  if (open) {
    rules.push(`#conv-${open} .unread-dot{display:none}`)
    rules.push(`#conv-${open} > a{background:var(--active);font-weight:600}`)
  }
  return rules.join('\n')
}

function conversationPane(open: NonNullable<ChatView['open']>, me: User): SafeHtml {
  const { record } = open
  const view = conversationFor(record, me.id)
  // A 1-on-1's messages show no sender: its header says who the other person is.
  const other = record.isGroup ? undefined : record.members.find((m) => m.id !== me.id)
  return html`<section id="conversation" class="conversation-pane" data-conversation-id="${record.id}" aria-label="Conversation">
  <header class="pane-header">
    <a class="back" href="/" aria-label="Back to conversations">←</a>
    <h2>${other ? personName(other) : conversationName(record, me.id)}</h2>
    <p class="member-count">${memberCount(view.member_count)}</p>
  </header>
  <div id="message-scroll" class="message-scroll">
    ${loadOlder(record, open.page)}
    <ol id="messages-${record.id}" class="message-list" aria-live="polite">${join(open.page.messages.map((m) => messageItem(m, senderNameIn(record, m.sender_id))))}</ol>
  </div>
  ${composer(record, open.composer)}
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
    ${groupForm(view.groupForm ?? {})}
    <h2>Conversations</h2>
    <ul id="conversation-list" class="conversation-list">${conversationList(view.conversations.conversations, me.id)}</ul>
    ${loadMoreConversations(view.conversations.nextCursor)}
    <h2>Users</h2>
    <ul class="user-list">${join(view.users.map(userRow))}</ul>
  </nav>
  <main class="main">
    ${view.open ? conversationPane(view.open, me) : html`<p class="empty">Pick a conversation, or click someone under Users to start one.</p>`}
  </main>
  <div id="live" hx-ws:connect="/ws?format=html" hx-swap="none" hidden></div>
</div>`
  const title = view.open ? `${conversationFor(view.open.record, me.id).display_name} · Pneumatic` : 'Pneumatic'
  return page({ title, nonce: view.nonce, style: viewerStyle(me, view.open?.record.id), body, interactive: true })
}

/**
 * What a viewer's open pages receive when a message arrives: the conversation's row moves to the
 * top of the list (unread unless it is open or the viewer sent it), and the message joins the
 * list if that conversation is open. Targets a page lacks are skipped by htmx.
 */
export function livePush(record: ConversationRecord, message: Message, viewerId: string): string {
  return html`<div id="conv-${record.id}" hx-swap-oob="delete"></div>
<hx-partial hx-target="#conversation-list" hx-swap="afterbegin">${conversationRow(record, viewerId, { unread: true, lastSenderId: message.sender_id })}</hx-partial>
${messagesUpsert(record, [message])}`.value
}
