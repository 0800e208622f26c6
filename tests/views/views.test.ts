import { describe, expect, test } from 'bun:test'
import type { ConversationRecord } from '../../src/conversations/model'
import type { Message } from '../../src/messages/model'
import type { ListedUser, User } from '../../src/users/model'
import { signInPage } from '../../views/auth'
import {
  catchUp,
  chatPage,
  composer,
  conversationPage,
  conversationRow,
  flash,
  groupAnswer,
  groupPush,
  leftNotice,
  leftPush,
  loadOlder,
  messageChangedPush,
  messagePush,
  messagesUpsert,
  noLongerMember,
  paneHeader,
  readPush,
  seenBy,
  type PushReading,
} from '../../views/chat'
import { emojiNames } from '../../views/emoji'
import { html, SafeHtml } from '../../views/html'
import { page } from '../../views/layout'
import { messageItem, positionMark, type Viewer } from '../../views/message'

const PAYLOADS = [
  '<img src=x onerror=alert(1)>',
  '<div hx-get="/x" hx-trigger="load">',
  '"><script>alert(1)</script>',
  "' onmouseover='alert(1)",
  '</textarea><img src=x onerror=alert(2)>',
  '</style><img src=x onerror=alert(3)>',
]

type Element = { tag: string; attributes: [string, string][] }

/** Every element and attribute a browser would build from the markup. */
async function parse(markup: string): Promise<Element[]> {
  const found: Element[] = []
  await new HTMLRewriter()
    .on('*', {
      element(el) {
        found.push({ tag: el.tagName, attributes: [...el.attributes] })
      },
    })
    .transform(new Response(markup))
    .text()
  return found
}

/** Nothing in the markup came from a payload: no injected element, handler or htmx attribute. */
async function expectInert(markup: string): Promise<void> {
  const elements = await parse(markup)
  expect(elements.filter((e) => e.tag === 'img')).toEqual([])
  for (const e of elements) {
    for (const [name, value] of e.attributes) {
      expect(name.startsWith('on')).toBe(false)
      expect(value).not.toBe('/x')
    }
    if (e.tag === 'script') expect(e.attributes.find(([n]) => n === 'src')?.[1]).toStartWith('/static/')
    expect(e.attributes.some(([n, v]) => n === 'hx-trigger' && v === 'load')).toBe(false)
  }
  for (const payload of PAYLOADS) expect(markup).not.toContain(payload)
}

const evil = (i: number) => PAYLOADS[i % PAYLOADS.length]!

const me: User = { id: '01a2-me', username: 'alice', full_name: evil(0) }
const them: User[] = PAYLOADS.map((p, i) => ({ id: `01a2-u${i}`, username: `user${i}`, full_name: p }))
/** As GET /users lists them: some online, some seen before. */
const listed = (users: User[]): ListedUser[] => users.map((u, i) => ({ ...u, online: i % 2 === 0, last_seen_at: i % 2 === 0 ? null : '2024-01-15T10:30:00.000Z' }))

const group: ConversationRecord = {
  id: '01a2-group',
  title: evil(1),
  isGroup: true,
  createdAt: 0,
  lastSeq: PAYLOADS.length,
  lastEventSeq: PAYLOADS.length,
  lastMessageAt: 0,
  members: [me, ...them],
}
const direct: ConversationRecord = { ...group, id: '01a2-direct', title: null, isGroup: false, members: [me, them[2]!] }

const messages: Message[] = PAYLOADS.map((content, i) => ({
  id: `01a2-m${i}`,
  message_id: `k${i}`,
  sender_id: them[i]!.id,
  conversation_id: group.id,
  content,
  created_at: '2026-11-24T10:30:00.000Z',
  seq: i + 1,
  edited_at: null,
  deleted_at: null,
  reply_to: null,
  reactions: [],
}))

/** Replies to hostile messages, edited, with hostile "emoji" reacted by hostile names (views escape what storage would refuse too). */
const replies: Message[] = messages.map((m, i) => ({
  ...m,
  id: `01a2-r${i}`,
  seq: PAYLOADS.length + i + 1,
  content: evil(i + 1),
  reply_to: m.id,
  edited_at: '2026-11-24T10:31:00.000Z',
  reactions: [{ emoji: evil(i + 2), user_ids: [them[i]!.id, me.id, 'someone-gone'] }],
}))
const deletedOne: Message = { ...replies[0]!, id: '01a2-gone', content: '', deleted_at: '2026-11-24T10:32:00.000Z', reactions: [] }

const people = new Map([me, ...them].map((u) => [u.id, u]))
const quotes = new Map(messages.map((m) => [m.id, m]))
/** How `viewerId` (by default me, the group's creator) sees the group, or a 1-on-1. */
const viewer = (record: ConversationRecord = group, viewerId = me.id): Viewer => ({ id: viewerId, record, creatorId: me.id, people, quotes, version: 7 })
/** Every member has read everything (so "Seen by" names all of them), with some unread for the viewer. */
const everyoneRead: PushReading = { unread: 3, reads: new Map(group.members.map((m) => [m.id, Number.MAX_SAFE_INTEGER])) }
const nothingRead: PushReading = { unread: 0, reads: new Map() }

describe('html``', () => {
  test('escapes every interpolated value, in text and in attributes', () => {
    expect(html`<p title="${'"x" & <y>'}">${"<b>'hi'</b>"}</p>`.value).toBe('<p title="&quot;x&quot; &amp; &lt;y&gt;">&lt;b&gt;&#x27;hi&#x27;&lt;/b&gt;</p>')
  })

  test('keeps nested html`` as markup, joins arrays, and drops null, undefined and false', () => {
    expect(html`<ul>${['a<', 'b'].map((x) => html`<li>${x}</li>`)}</ul>${null}${undefined}${false}${0}`.value).toBe('<ul><li>a&lt;</li><li>b</li></ul>0')
  })

  test('a plain string that looks like markup is still escaped', () => {
    expect(html`${new SafeHtml('<i>ok</i>')}${'<i>no</i>'}`.value).toBe('<i>ok</i>&lt;i&gt;no&lt;/i&gt;')
  })
})

describe('every view is inert to hostile values', () => {
  test('the sign-in page, with hostile username, full name and error', async () => {
    for (const tab of ['login', 'signup'] as const) {
      await expectInert(signInPage({ tab, nonce: 'n', username: evil(2), fullName: evil(4), error: evil(0) }))
    }
  })

  test('the chat page with hostile names, titles, messages and form values', async () => {
    const markup = chatPage({
      me,
      nonce: 'n',
      conversations: { conversations: [group, direct].map((c) => ({ ...c, read: { lastReadSeq: 0, unreadCount: 3 } })), nextCursor: evil(5) },
      users: listed(them),
      open: {
        viewer: viewer(),
        page: { messages: [...messages, ...replies, deletedOne], has_more: true },
        composer: { messageId: 'id', content: evil(4), error: evil(0), replyTo: { message: messages[1]!, sender: them[1]! } },
        header: { error: evil(2), usernames: evil(3), title: evil(4), open: 'members' },
        states: new Map([
          [replies[0]!.id, { editing: true, draft: evil(5), error: evil(1) }],
          [messages[3]!.id, { error: evil(3) }],
        ]),
        // Everyone has read it all: "Seen by" names each of them.
        reads: new Map(group.members.map((m) => [m.id, Number.MAX_SAFE_INTEGER])),
      },
      groupForm: { open: true, error: evil(1), title: evil(2), usernames: evil(3) },
    })
    await expectInert(markup)
    for (const payload of PAYLOADS) expect(markup).toContain(Bun.escapeHTML(payload))
  })

  test('a message, a conversation row, a page of conversations, load-older, the composer and a live push', async () => {
    for (const message of [...messages, ...replies, deletedOne]) {
      for (const who of [me.id, them[0]!.id]) {
        await expectInert(messageItem(message, viewer(group, who)).value)
        await expectInert(messageItem(message, viewer(group, who), { editing: true, draft: evil(3), error: evil(4) }).value)
        await expectInert(messagePush(viewer(group, who), message, 9, everyoneRead))
        await expectInert(messageChangedPush(viewer(group, who), message, 9, 2))
        await expectInert(readPush(viewer(group, who), 9, everyoneRead))
      }
    }
    await expectInert(conversationRow(group, me.id, 5).value)
    await expectInert(conversationRow(direct, me.id).value)
    for (const append of [false, true]) await expectInert(conversationPage({ conversations: [group, direct].map((c) => ({ ...c, read: { lastReadSeq: 1, unreadCount: 0 } })), nextCursor: evil(1) }, me.id, append))
    await expectInert(messagesUpsert(viewer(), [...messages, ...replies]).value)
    await expectInert(loadOlder(group, { messages, has_more: true }).value)
    await expectInert(composer(group.id, { messageId: evil(2), content: evil(4), error: evil(5) }).value)
    await expectInert(composer(group.id, { messageId: evil(2), content: evil(4), replyTo: { message: messages[0]! } }).value)
  })

  test("a group's header, its pushes and answers, the catch-up, notices and the emoji list", async () => {
    for (const who of [me.id, them[1]!.id, 'not-a-member']) {
      await expectInert(paneHeader(viewer(group, who), { error: evil(0), usernames: evil(1), title: evil(2), open: 'rename' }).value)
      await expectInert(groupAnswer(viewer(group, who), { error: evil(3) }).value)
      await expectInert(groupPush(viewer(group, who), 4, { unread: 1 }))
      await expectInert(leftPush(viewer(group, who), them[3]!.id))
      await expectInert(leftNotice(viewer(group, who), them[4]!.id).value)
      await expectInert(catchUp(viewer(group, who), 3, 9, { added: messages, replaced: [...replies, deletedOne], group: true }, everyoneRead))
      await expectInert(seenBy(viewer(group, who), everyoneRead.reads).value)
    }
    await expectInert(paneHeader(viewer(direct)).value)
    await expectInert(noLongerMember(evil(1)).value)
    await expectInert(flash(evil(2)).value)
    await expectInert(positionMark(evil(3), 1, 2).value)
    await expectInert(emojiNames().value)
  })

  test('a page refuses a style that could close its element', () => {
    expect(() => page({ title: 't', nonce: 'n', style: '</style><img src=x>', body: html`` })).toThrow()
  })
})

describe('one message view everywhere', () => {
  const open = (record: ConversationRecord, shown: Message[], who = me.id) => ({ viewer: viewer(record, who), page: { messages: shown, has_more: false }, composer: { messageId: 'x' }, reads: new Map() })

  test('the full page, a history page, a live push and a catch-up render a message the same way', () => {
    const pageMarkup = chatPage({ me, nonce: 'n', conversations: { conversations: [{ ...group, read: { lastReadSeq: 0, unreadCount: 0 } }], nextCursor: null }, users: [], open: open(group, [messages[0]!]) })
    const inGroup = messageItem(messages[0]!, viewer()).value
    expect(inGroup).toStartWith(`<li id="msg-${messages[0]!.id}" class="message" data-seq="1" data-sender="${them[0]!.id}" data-version="7" tabindex="0">`)
    expect(pageMarkup).toContain(inGroup)
    expect(messagesUpsert(viewer(), [messages[0]!]).value).toContain(inGroup)
    expect(messagePush(viewer(), messages[0]!, 7, nothingRead)).toContain(inGroup)
    expect(catchUp(viewer(), 0, 7, { added: [messages[0]!], replaced: [], group: false }, nothingRead)).toContain(inGroup)
    expect(inGroup).toContain(`<span class="sender"><bdi>${Bun.escapeHTML(them[0]!.full_name!)}</bdi> <span class="username">@user0</span></span>`)
  })

  test('a 1-on-1 shows no sender names; a group does', () => {
    expect(messagesUpsert(viewer(direct), [{ ...messages[2]!, conversation_id: direct.id }]).value).not.toContain('class="sender"')
    expect(messagesUpsert(viewer(), [messages[2]!]).value).toContain('class="sender"')
  })

  test('a live push names a 1-on-1 after the other person, for each side', () => {
    const other = them[2]!
    const message = { ...messages[0]!, conversation_id: direct.id, sender_id: other.id }
    expect(messagePush(viewer(direct), message, 1, nothingRead)).toContain(`<span class="conversation-name">${Bun.escapeHTML(other.full_name!)}</span>`)
    expect(messagePush(viewer(direct, other.id), message, 1, nothingRead)).toContain(`<span class="conversation-name">${Bun.escapeHTML(me.full_name!)}</span>`)
  })

  test('a sender without a full name is shown by username alone, and one nobody knows as Unknown', () => {
    const nameless: User = { id: '01a2-nameless', username: 'zed', full_name: null }
    const withZed: Viewer = { ...viewer({ ...group, members: [me, nameless] }), people: new Map([[nameless.id, nameless]]) }
    expect(messagesUpsert(withZed, [{ ...messages[0]!, sender_id: nameless.id }]).value).toContain('<span class="sender">zed</span>')
    expect(messagesUpsert(withZed, [{ ...messages[0]!, sender_id: 'who-knows' }]).value).toContain('<span class="sender">Unknown</span>')
  })

  test('"Seen by" names the others whose read position reached the newest message, not the viewer; a read push clears the badge', () => {
    const reads = new Map([
      [me.id, 5],
      [them[0]!.id, 5],
      [them[1]!.id, 4],
      [them[2]!.id, 9],
    ])
    const atFive = viewer({ ...group, lastSeq: 5 })
    const seen = seenBy(atFive, reads).value
    expect(seen).toBe(`<p id="seen-${group.id}" class="seen-by" aria-live="polite">Seen by <bdi>${Bun.escapeHTML(them[0]!.full_name!)}</bdi>, <bdi>${Bun.escapeHTML(them[2]!.full_name!)}</bdi></p>`)
    expect(seenBy(viewer({ ...group, lastSeq: 0 }), reads).value).toBe(`<p id="seen-${group.id}" class="seen-by" aria-live="polite"></p>`)
    const push = readPush(atFive, 8, { unread: 0, reads })
    expect(push).toContain(`<hx-partial hx-target="#conv-${group.id} .unread" hx-swap="outerHTML"><span class="unread" data-count="0"></span></hx-partial>`)
    expect(push).toContain(seen)
    expect(push).toContain(`<hx-position conversation="${group.id}" after="7" through="8"></hx-position>`)
  })

  test("a 1-on-1's header names the other person with their @username", () => {
    const markup = chatPage({ me, nonce: 'n', conversations: { conversations: [{ ...direct, read: { lastReadSeq: 0, unreadCount: 0 } }], nextCursor: null }, users: [], open: open(direct, []) })
    expect(markup).toContain(`<h2><bdi>${Bun.escapeHTML(them[2]!.full_name!)}</bdi> <span class="username">@user2</span></h2>`)
  })

  test('a live push moves the row to the top with the unread count, merges the message by id and seq, renews "Seen by", and says its event_seq', () => {
    const push = messagePush(viewer(), messages[1]!, 12, { unread: 4, reads: new Map([[them[0]!.id, 3]]) })
    expect(push).toContain(`<div id="conv-${group.id}" hx-swap-oob="delete"></div>`)
    expect(push).toContain('<hx-partial hx-target="#conversation-list" hx-swap="afterbegin">')
    expect(push).toContain('<span class="unread" data-count="4" role="status" aria-label="4 unread">4</span>')
    // Nobody has read up to the newest message yet.
    expect(push).toContain(`<hx-partial hx-target="#seen-${group.id}" hx-swap="outerHTML"><p id="seen-${group.id}" class="seen-by" aria-live="polite"></p></hx-partial>`)
    expect(push).toContain(`<hx-partial hx-target="#messages-${group.id}" hx-swap="merge">`)
    expect(push).toContain(`<hx-position conversation="${group.id}" after="11" through="12"></hx-position>`)
  })

  test('an edit, a deletion or a reaction replaces the message only where it is shown, and leaves the list order alone', () => {
    const push = messageChangedPush(viewer(), replies[0]!, 15)
    expect(push).toContain(`<hx-partial hx-target="#messages-${group.id}" hx-swap="merge existing">`)
    expect(push).not.toContain('conversation-list')
    expect(push).toContain(`<hx-position conversation="${group.id}" after="14" through="15"></hx-position>`)
  })
})

describe('what can be done with a message, and how it shows', () => {
  const own = { ...messages[0]!, sender_id: them[1]!.id }
  const actionsOf = (markup: string) => ({
    react: markup.includes('aria-label="React"'),
    reply: markup.includes('aria-label="Reply"'),
    edit: markup.includes('aria-label="Edit"'),
    delete: markup.includes('aria-label="Delete"'),
  })

  test('its sender may react, reply, edit and delete; another member may react and reply', () => {
    expect(actionsOf(messageItem(own, viewer(group, them[1]!.id)).value)).toEqual({ react: true, reply: true, edit: true, delete: true })
    expect(actionsOf(messageItem(own, viewer(group, them[2]!.id)).value)).toEqual({ react: true, reply: true, edit: false, delete: false })
  })

  test("a group's creator may delete anyone's message, but edit only their own; in a 1-on-1 nobody deletes the other's", () => {
    expect(actionsOf(messageItem(own, viewer(group, me.id)).value)).toEqual({ react: true, reply: true, edit: false, delete: true })
    const inDirect = { ...own, sender_id: them[2]!.id, conversation_id: direct.id }
    expect(actionsOf(messageItem(inDirect, viewer(direct, me.id)).value)).toEqual({ react: true, reply: true, edit: false, delete: false })
  })

  test('an edited message is marked (edited); a deleted one says so, with no content, quote, reactions or actions', () => {
    const edited = messageItem(replies[1]!, viewer()).value
    expect(edited).toContain('<span class="edited" title="Edited 2026-11-24T10:31:00.000Z">(edited)</span>')
    const gone = messageItem({ ...replies[1]!, content: '', deleted_at: '2026-11-24T10:40:00.000Z' }, viewer()).value
    expect(gone).toStartWith(`<li id="msg-${replies[1]!.id}" class="message deleted"`)
    expect(gone).toContain('<p class="deleted-note">This message was deleted</p>')
    for (const absent of ['class="content"', 'class="quote"', 'class="reactions"', 'class="actions"', '(edited)']) expect(gone).not.toContain(absent)
  })

  test("reactions are chips with counts and who reacted; the viewer's own is pressed and takes theirs back", () => {
    const markup = messageItem(replies[0]!, viewer()).value
    expect(markup).toContain('class="chip mine" aria-pressed="true"')
    expect(markup).toContain('<input type="hidden" name="added" value="0">')
    expect(markup).toContain(`<span class="count">3</span>`)
    expect(markup).toContain(`title="${Bun.escapeHTML(`${them[0]!.full_name} (@user0), ${me.full_name} (@alice), Unknown`)}"`)
    const theirs = messageItem(replies[0]!, viewer(group, them[3]!.id)).value
    expect(theirs).toContain('class="chip" aria-pressed="false"')
    expect(theirs).toContain('<input type="hidden" name="added" value="1">')
  })

  test('the picker offers the common six and a search over named emoji', () => {
    const markup = messageItem(messages[0]!, viewer()).value
    for (const emoji of ['👍', '❤️', '😂', '🎉', '😮', '😢']) expect(markup).toContain(`name="emoji" value="${emoji}"`)
    expect(markup).toContain('list="emoji-names"')
    expect(emojiNames().value).toContain('<option value="🔥" label="🔥 fire, hot, lit"></option>')
  })

  test("a reply quotes the start of the original and links to it; a deleted original is said to be deleted", () => {
    const long = { ...messages[0]!, id: '01a2-long', content: `${'word '.repeat(60)}end` }
    const reply = { ...replies[0]!, reply_to: long.id }
    const markup = messageItem(reply, { ...viewer(), quotes: new Map([[long.id, long]]) }).value
    expect(markup).toContain(`<a class="quote" href="#msg-${long.id}" data-reply-to="${long.id}" data-reply-seq="1"`)
    expect(markup).toContain(`<span class="quote-text">${'word '.repeat(28).trim()}…</span>`)
    const gone = messageItem(reply, { ...viewer(), quotes: new Map([[long.id, { ...long, content: '', deleted_at: '2026-11-24T10:40:00.000Z' }]]) }).value
    expect(gone).toContain('<span class="quote-text">This message was deleted</span>')
  })

  test('editing shows the form in place of the content, with the draft; only for its sender', () => {
    const editing = messageItem(own, viewer(group, them[1]!.id), { editing: true, draft: 'new words' }).value
    expect(editing).toContain(`<form class="edit-form" method="post" action="/ui/messages/${own.id}/edit"`)
    expect(editing).toContain('required autofocus>new words</textarea>')
    expect(editing).not.toContain('class="content"')
    expect(messageItem(own, viewer(group, them[2]!.id), { editing: true }).value).not.toContain('edit-form')
  })
})

describe("a group's header", () => {
  test('Members lists everyone, lets its creator remove others, and anyone add people and leave; Rename is there too', () => {
    const asCreator = paneHeader(viewer(group, me.id)).value
    expect(asCreator.match(/>Remove<\/button>/g)).toHaveLength(them.length)
    expect(asCreator).toContain(`action="/c/${group.id}/members"`)
    expect(asCreator).toContain(`action="/c/${group.id}/leave"`)
    expect(asCreator).toContain(`action="/c/${group.id}/rename"`)
    expect(paneHeader(viewer(group, them[0]!.id)).value).not.toContain('>Remove</button>')
  })

  test('a 1-on-1 and someone no longer in the group get no group tools', () => {
    expect(paneHeader(viewer(direct)).value).not.toContain('group-tools')
    expect(paneHeader(viewer(group, 'not-a-member')).value).not.toContain('group-tools')
  })

  test('every member of a group or a 1-on-1 gets Export, a download of the conversation; someone no longer in the group does not', () => {
    for (const [record, id] of [[group, me.id], [group, them[0]!.id], [direct, me.id]] as const) {
      expect(paneHeader(viewer(record, id)).value).toContain(`<a class="tool export" href="/c/${record.id}/export" download`)
    }
    expect(paneHeader(viewer(group, 'not-a-member')).value).not.toContain('/export')
  })

  test('the one who left, or was removed, is told which', () => {
    expect(leftNotice(viewer(group, them[0]!.id), them[0]!.id).value).toContain('You left this group.')
    expect(leftNotice(viewer(group, them[0]!.id), me.id).value).toContain(`You were removed from this group by <bdi>${Bun.escapeHTML(me.full_name!)}</bdi>`)
  })
})

describe('a copied full name', () => {
  const real: User = { id: '01a2-real', username: 'alice_smith', full_name: 'Alice Smith' }
  const impostor: User = { id: '01a2-fake', username: 'mallory', full_name: 'Alice Smith' }
  const team: ConversationRecord = { ...group, members: [me, real, impostor] }
  const teamViewer: Viewer = { ...viewer(team), people: new Map([me, real, impostor].map((u) => [u.id, u])) }
  const from = (sender: User, seq: number): Message => ({ ...messages[0]!, id: `01a2-m-${sender.id}`, sender_id: sender.id, conversation_id: team.id, seq })
  const sent = [from(real, 1), from(impostor, 2)]
  const senderOf = (markup: string, message: Message) => markup.slice(markup.indexOf(`id="msg-${message.id}"`)).match(/<span class="sender">(.*?)<\/span><\/span>/)![1]

  test('is told apart by the @username beside it: in the page, a page of history and a live push', () => {
    const pageMarkup = chatPage({ me, nonce: 'n', conversations: { conversations: [{ ...team, read: { lastReadSeq: 0, unreadCount: 0 } }], nextCursor: null }, users: listed([real, impostor]), open: { viewer: teamViewer, page: { messages: sent, has_more: false }, composer: { messageId: 'x' }, reads: new Map() } })
    const history = messagesUpsert(teamViewer, sent).value
    for (const markup of [pageMarkup, history]) {
      expect(senderOf(markup, sent[0]!)).toBe('<bdi>Alice Smith</bdi> <span class="username">@alice_smith')
      expect(senderOf(markup, sent[1]!)).toBe('<bdi>Alice Smith</bdi> <span class="username">@mallory')
    }
    expect(senderOf(messagePush(teamViewer, sent[1]!, 2, nothingRead), sent[1]!)).toBe('<bdi>Alice Smith</bdi> <span class="username">@mallory')
    // And in the Users list.
    expect(pageMarkup).toContain('<bdi>Alice Smith</bdi> <span class="username">@mallory</span></button>')
  })
})
