import { describe, expect, test } from 'bun:test'
import { listen, testApp } from '../support/app'
import { account, call, conversation, send, uniqueName } from '../support/http'
import { TestSocket } from '../support/ws'

// src/ui/push.ts: every change of a conversation reaches each member's open pages, rendered for
// them, with its event_seq; a removal reaches the one removed, and then nothing more does.

const htmlSocket = (ws: string, token: string) => TestSocket.open(`${ws}?format=html&token=${token}`)
const nextPush = async (page: TestSocket) => (await page.nextOfType('html')).html as string
const position = (conversationId: string, eventSeq: number) => `<hx-position conversation="${conversationId}" after="${eventSeq - 1}" through="${eventSeq}"></hx-position>`

describe('pushes of changes to the web UI', () => {
  test('an edit, a deletion and a reaction replace the message where it is shown, for each viewer, with their event_seq', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app, uniqueName('alice'), 'Alice Smith')
    const bob = await account(t.app, uniqueName('bob'), 'Bob Builder')
    const direct = await conversation(t.app, alice, [bob])
    const sent = await send(t.app, alice, direct.id, 'first words')
    const id = sent.body.id as string
    using alicePage = await htmlSocket(ws, alice.token)
    using bobPage = await htmlSocket(ws, bob.token)

    expect((await call(t.app, 'PATCH', `/messages/${id}`, { token: alice.token, body: { content: 'second <i>words</i>' } })).status).toBe(200)
    for (const page of [alicePage, bobPage]) {
      const push = await nextPush(page)
      expect(push).toContain(`<hx-partial hx-target="#messages-${direct.id}" hx-swap="merge existing">`)
      expect(push).toContain('<p class="content">second &lt;i&gt;words&lt;/i&gt;</p>')
      expect(push).toContain('(edited)')
      expect(push).toContain('data-version="2"')
      expect(push).toContain(position(direct.id, 2))
      // A change to a message does not move its conversation in the list.
      expect(push).not.toContain('conversation-list')
    }
    // Edit for its sender only; what one may do depends on who looks.
    expect(await alicePage.drain()).toEqual([])

    expect((await call(t.app, 'PUT', `/messages/${id}/reactions/${encodeURIComponent('🎉')}`, { token: bob.token })).status).toBe(204)
    const toAlice = await nextPush(alicePage)
    const toBob = await nextPush(bobPage)
    expect(toAlice).toContain('class="chip" aria-pressed="false"')
    expect(toBob).toContain('class="chip mine" aria-pressed="true"')
    expect(toAlice).toContain(position(direct.id, 3))
    expect(toAlice).toContain('aria-label="Edit"')
    expect(toBob).not.toContain('aria-label="Edit"')

    expect((await call(t.app, 'DELETE', `/messages/${id}`, { token: alice.token })).status).toBe(204)
    for (const page of [alicePage, bobPage]) {
      const push = await nextPush(page)
      expect(push).toContain('<p class="deleted-note">This message was deleted</p>')
      expect(push).not.toContain('words')
      expect(push).toContain(position(direct.id, 4))
    }
    expect(await bobPage.drain()).toEqual([])
  })

  test('a reply is pushed with a quote of the message it answers', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    const original = (await send(t.app, alice, direct.id, 'Lunch?')).body.id
    using bobPage = await htmlSocket(ws, bob.token)
    await call(t.app, 'POST', '/messages', { token: alice.token, body: { message_id: 'r', conversation_id: direct.id, content: 'At noon', reply_to: original } })
    const push = await nextPush(bobPage)
    expect(push).toContain(`<a class="quote" href="#msg-${original}" data-reply-to="${original}" data-reply-seq="1"`)
    expect(push).toContain('<span class="quote-text">Lunch?</span>')
  })

  test('members added, renamed, removed: the header and row for those in the group, the row for the one added, a notice for the one removed, then nothing for them', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app, uniqueName('alice'), 'Alice Smith')
    const bob = await account(t.app, uniqueName('bob'), 'Bob Builder')
    const carol = await account(t.app, uniqueName('carol'), 'Carol Danvers')
    const team = await conversation(t.app, alice, [bob], 'Team')
    using bobPage = await htmlSocket(ws, bob.token)
    using carolPage = await htmlSocket(ws, carol.token)

    expect((await call(t.app, 'POST', `/conversations/${team.id}/members`, { token: alice.token, body: { member_ids: [carol.id] } })).status).toBe(200)
    const toBob = await nextPush(bobPage)
    expect(toBob).toContain(`<hx-partial hx-target="#header-${team.id}" hx-swap="refresh">`)
    expect(toBob).toContain('<p class="member-count">3 members</p>')
    expect(toBob).not.toContain('conversation-list') // not moved: only the one added gets it on top
    expect(toBob).toContain(position(team.id, 1))
    const toCarol = await nextPush(carolPage)
    expect(toCarol).toContain('<hx-partial hx-target="#conversation-list" hx-swap="afterbegin">')
    expect(toCarol).toContain(`<li id="conv-${team.id}" class="conversation">`)
    // Carol has read what was said before she came.
    expect(toCarol).toContain('<span class="unread" data-count="0"></span>')

    expect((await call(t.app, 'PATCH', `/conversations/${team.id}`, { token: bob.token, body: { title: 'Dream <Team>' } })).status).toBe(200)
    for (const page of [bobPage, carolPage]) {
      const push = await nextPush(page)
      expect(push).toContain(`<hx-partial hx-target="#conv-${team.id} .conversation-name" hx-swap="innerHTML"><span class="group-icon" aria-label="Group">👥</span> Dream &lt;Team&gt;</hx-partial>`)
      expect(push).toContain(position(team.id, 2))
    }

    expect((await call(t.app, 'DELETE', `/conversations/${team.id}/members/${carol.id}`, { token: alice.token })).status).toBe(204)
    const gone = await nextPush(carolPage)
    expect(gone).toContain(`<div id="conv-${team.id}" hx-swap-oob="delete"></div>`)
    expect(gone).toContain('You were removed from this group by <bdi>Alice Smith</bdi>')
    expect(gone).not.toContain('group-tools')
    expect(await nextPush(bobPage)).toContain('<p class="member-count">2 members</p>')

    await send(t.app, alice, team.id, 'without carol')
    expect(await nextPush(bobPage)).toContain('without carol')
    expect(await carolPage.drain()).toEqual([])

    // Leaving is said as leaving.
    expect((await call(t.app, 'DELETE', `/conversations/${team.id}/members/${bob.id}`, { token: bob.token })).status).toBe(204)
    expect(await nextPush(bobPage)).toContain('You left this group.')
  })
})
