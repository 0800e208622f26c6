import { describe, expect, test } from 'bun:test'
import type { ConversationRecord } from '../../src/conversations/model'
import type { Message } from '../../src/messages/model'
import type { User } from '../../src/users/model'
import { signInPage } from '../../views/auth'
import { chatPage, composer, conversationPage, conversationRow, livePush, loadOlder, messageItem, messagesUpsert, senderNameIn } from '../../views/chat'
import { html, SafeHtml } from '../../views/html'
import { page } from '../../views/layout'

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
      conversations: { conversations: [group, direct], nextCursor: evil(5) },
      users: them,
      open: { record: group, page: { messages, has_more: true }, composer: { messageId: 'id', content: evil(4), error: evil(0) } },
      groupForm: { open: true, error: evil(1), title: evil(2), usernames: evil(3) },
    })
    await expectInert(markup)
    for (const payload of PAYLOADS) expect(markup).toContain(Bun.escapeHTML(payload))
  })

  test('a message, a conversation row, a page of conversations, load-older, the composer and a live push', async () => {
    for (const message of messages) await expectInert(messageItem(message, senderNameIn(group, message.sender_id)).value)
    await expectInert(conversationRow(group, me.id, { unread: true, lastSenderId: evil(0) }).value)
    await expectInert(conversationRow(direct, me.id).value)
    for (const append of [false, true]) await expectInert(conversationPage({ conversations: [group, direct], nextCursor: evil(1) }, me.id, append))
    await expectInert(messagesUpsert(group, messages).value)
    await expectInert(loadOlder(group, { messages, has_more: true }).value)
    await expectInert(composer(group, { messageId: evil(2), content: evil(4), error: evil(5) }).value)
    for (const message of messages) await expectInert(livePush(group, message, me.id))
  })

  test('a page refuses a style that could close its element', () => {
    expect(() => page({ title: 't', nonce: 'n', style: '</style><img src=x>', body: html`` })).toThrow()
  })
})

describe('one message view everywhere', () => {
  test('the full page, a history page and a live push render a message the same way', () => {
    const pageMarkup = chatPage({ me, nonce: 'n', conversations: { conversations: [group], nextCursor: null }, users: [], open: { record: group, page: { messages: [messages[0]!], has_more: false }, composer: { messageId: 'x' } } })
    const inGroup = messageItem(messages[0]!, senderNameIn(group, messages[0]!.sender_id)).value
    expect(inGroup).toStartWith(`<li id="msg-${messages[0]!.id}" class="message" data-seq="1" data-sender="${them[0]!.id}">`)
    expect(pageMarkup).toContain(inGroup)
    expect(messagesUpsert(group, [messages[0]!]).value).toContain(inGroup)
    expect(livePush(group, messages[0]!, me.id)).toContain(inGroup)
    expect(inGroup).toContain(`<span class="sender"><bdi>${Bun.escapeHTML(them[0]!.full_name!)}</bdi> <span class="username">@user0</span></span>`)
  })

  test('a 1-on-1 shows no sender names; a group does', () => {
    expect(messagesUpsert(direct, [{ ...messages[2]!, conversation_id: direct.id }]).value).not.toContain('class="sender"')
    expect(messagesUpsert(group, [messages[2]!]).value).toContain('class="sender"')
  })

  test('a live push names a 1-on-1 after the other person, for each side', () => {
    const other = them[2]!
    const message = { ...messages[0]!, conversation_id: direct.id, sender_id: other.id }
    expect(livePush(direct, message, me.id)).toContain(`<span class="conversation-name">${Bun.escapeHTML(other.full_name!)}</span>`)
    expect(livePush(direct, message, other.id)).toContain(`<span class="conversation-name">${Bun.escapeHTML(me.full_name!)}</span>`)
  })

  test('a sender without a full name is shown by username alone', () => {
    const nameless: User = { id: '01a2-nameless', username: 'zed', full_name: null }
    const withZed: ConversationRecord = { ...group, members: [me, nameless] }
    expect(messagesUpsert(withZed, [{ ...messages[0]!, sender_id: nameless.id }]).value).toContain('<span class="sender">zed</span>')
  })

  test("a 1-on-1's header names the other person with their @username", () => {
    const markup = chatPage({ me, nonce: 'n', conversations: { conversations: [direct], nextCursor: null }, users: [], open: { record: direct, page: { messages: [], has_more: false }, composer: { messageId: 'x' } } })
    expect(markup).toContain(`<h2><bdi>${Bun.escapeHTML(them[2]!.full_name!)}</bdi> <span class="username">@user2</span></h2>`)
  })

  test('a live push moves the row to the top, marked unread, and merges the message by seq', () => {
    const push = livePush(group, messages[1]!, me.id)
    expect(push).toContain(`<div id="conv-${group.id}" hx-swap-oob="delete"></div>`)
    expect(push).toContain('<hx-partial hx-target="#conversation-list" hx-swap="afterbegin">')
    expect(push).toContain('class="unread-dot"')
    expect(push).toContain(`<hx-upsert hx-target="#messages-${group.id}" key="data-seq" sort>`)
  })
})

describe('a copied full name', () => {
  const real: User = { id: '01a2-real', username: 'alice_smith', full_name: 'Alice Smith' }
  const impostor: User = { id: '01a2-fake', username: 'mallory', full_name: 'Alice Smith' }
  const team: ConversationRecord = { ...group, members: [me, real, impostor] }
  const from = (sender: User, seq: number): Message => ({ ...messages[0]!, id: `01a2-m-${sender.id}`, sender_id: sender.id, conversation_id: team.id, seq })
  const sent = [from(real, 1), from(impostor, 2)]
  const senderOf = (markup: string, message: Message) => markup.slice(markup.indexOf(`id="msg-${message.id}"`)).match(/<span class="sender">(.*?)<\/span><\/span>/)![1]

  test('is told apart by the @username beside it: in the page, a page of history and a live push', () => {
    const pageMarkup = chatPage({ me, nonce: 'n', conversations: { conversations: [team], nextCursor: null }, users: [real, impostor], open: { record: team, page: { messages: sent, has_more: false }, composer: { messageId: 'x' } } })
    const history = messagesUpsert(team, sent).value
    for (const markup of [pageMarkup, history]) {
      expect(senderOf(markup, sent[0]!)).toBe('<bdi>Alice Smith</bdi> <span class="username">@alice_smith')
      expect(senderOf(markup, sent[1]!)).toBe('<bdi>Alice Smith</bdi> <span class="username">@mallory')
    }
    expect(senderOf(livePush(team, sent[1]!, me.id), sent[1]!)).toBe('<bdi>Alice Smith</bdi> <span class="username">@mallory')
    // And in the Users list.
    expect(pageMarkup).toContain('<bdi>Alice Smith</bdi> <span class="username">@mallory</span></button>')
  })
})
