import { describe, expect, test } from 'bun:test'
import { pruneChanges } from '../../src/conversations/changes'
import { testApp, type TestApp } from '../support/app'
import { FormClient, signedInBrowser as person } from '../support/form-client'
import { call } from '../support/http'

// The web UI's routes for edits, deletions, reactions, replies, a group's members and name, and
// the catch-up after a reconnect: each goes through its service, and each refusal is shown, never a 500.

const HTMX = { 'hx-request': 'true' }

type Person = Awaited<ReturnType<typeof person>>

async function say(t: TestApp, who: Person, conversationId: string, content: string, replyTo?: string): Promise<string> {
  const reply = await call(t.app, 'POST', '/messages', { token: who.token, body: { message_id: crypto.randomUUID(), conversation_id: conversationId, content, ...(replyTo ? { reply_to: replyTo } : {}) } })
  if (reply.status !== 201) throw new Error(`send failed: ${reply.status} ${JSON.stringify(reply.body)}`)
  return reply.body.id
}

async function direct(t: TestApp) {
  const alice = await person(t, 'Alice Smith')
  const bob = await person(t, 'Bob Builder')
  const { location } = await alice.client.post('/ui/direct', { user_id: bob.id })
  return { alice, bob, id: location!.split('/').pop()! }
}

async function group(t: TestApp) {
  const alice = await person(t, 'Alice Smith')
  const bob = await person(t, 'Bob Builder')
  const carol = await person(t, 'Carol Danvers')
  const { location } = await alice.client.post('/ui/groups', { title: 'Launch Team', usernames: bob.username })
  return { alice, bob, carol, id: location!.split('/').pop()! }
}

const stored = async (t: TestApp, id: string) => (await t.sql<{ content: string; edited_at: number | null; deleted_at: number | null }>('SELECT content, edited_at, deleted_at FROM messages WHERE id = ?', id))[0]!
const reactionsOf = async (t: TestApp, who: Person, conversationId: string, id: string) =>
  (await call(t.app, 'GET', `/conversations/${conversationId}/messages`, { token: who.token })).body.messages.find((m: { id: string }) => m.id === id).reactions
const membersOf = async (t: TestApp, id: string) => (await t.sql<{ user_id: string }>('SELECT user_id FROM conversation_members WHERE conversation_id = ? ORDER BY user_id', id)).map((r) => r.user_id)

describe('editing a message', () => {
  test('its sender edits it: with htmx the message comes back changed, marked (edited), its form closed', async () => {
    await using t = await testApp()
    const { alice, id } = await direct(t)
    const message = await say(t, alice, id, 'Lunch at 12?')
    const reply = await alice.client.request('POST', `/ui/messages/${message}/edit`, { form: { content: 'Lunch at 1?' }, headers: HTMX })
    expect(reply.status).toBe(200)
    expect(reply.body).toStartWith(`<hx-partial hx-target="#messages-${id}" hx-swap="merge existing fresh">`)
    expect(reply.body).toContain('<p class="content">Lunch at 1?</p>')
    expect(reply.body).toContain('(edited)')
    expect(reply.body).not.toContain('edit-form')
    expect(await stored(t, message)).toMatchObject({ content: 'Lunch at 1?' })
  })

  test('without JavaScript: Edit opens the page with the form in place, and saving goes back to the message', async () => {
    await using t = await testApp()
    const { alice, id } = await direct(t)
    const message = await say(t, alice, id, 'First draft')
    const edit = await alice.client.get(`/ui/messages/${message}/edit`)
    expect(edit.status).toBe(303)
    expect(edit.location).toBe(`/c/${id}?edit=${message}#msg-${message}`)
    const page = await alice.client.get(`/c/${id}?edit=${message}`)
    expect(page.body).toContain(`<form class="edit-form" method="post" action="/ui/messages/${message}/edit"`)
    expect(page.body).toContain('required autofocus>First draft</textarea>')
    const saved = await alice.client.post(`/ui/messages/${message}/edit`, { content: 'Final' })
    expect(saved.status).toBe(303)
    expect(saved.location).toBe(`/c/${id}#msg-${message}`)
    expect((await alice.client.get(`/c/${id}`)).body).toContain('<p class="content">Final</p>')
  })

  test("someone else's message is refused with 403, shown on the message, not a 500, and nothing changes", async () => {
    await using t = await testApp()
    const { alice, bob, id } = await direct(t)
    const message = await say(t, alice, id, 'Mine')
    const form = await bob.client.get(`/ui/messages/${message}/edit`, HTMX)
    expect(form.status).toBe(403)
    expect(form.body).not.toContain('edit-form')
    expect(form.body).toContain('role="alert">Only its sender may edit a message</p>')
    const reply = await bob.client.request('POST', `/ui/messages/${message}/edit`, { form: { content: 'Hijacked' }, headers: HTMX })
    expect(reply.status).toBe(403)
    expect(reply.body).toContain('role="alert">Only its sender may edit a message</p>')
    expect(reply.body).toContain('<p class="content">Mine</p>')
    const page = await bob.client.post(`/ui/messages/${message}/edit`, { content: 'Hijacked' })
    expect(page.status).toBe(403)
    expect(page.body).toContain('role="alert">Only its sender may edit a message</p>')
    expect(await stored(t, message)).toMatchObject({ content: 'Mine', edited_at: null })
  })

  test('empty content keeps the form open with the draft and says why', async () => {
    await using t = await testApp()
    const { alice, id } = await direct(t)
    const message = await say(t, alice, id, 'Keep me')
    const reply = await alice.client.request('POST', `/ui/messages/${message}/edit`, { form: { content: '   ' }, headers: HTMX })
    expect(reply.status).toBe(422)
    expect(reply.body).toContain('edit-form')
    expect(reply.body).toContain('role="alert">Message must not be empty or only whitespace</p>')
    expect(await stored(t, message)).toMatchObject({ content: 'Keep me' })
  })

  test("a message of a conversation one is not in is refused without showing it; an unknown one is 404", async () => {
    await using t = await testApp()
    const { alice, id } = await direct(t)
    const eve = await person(t)
    const message = await say(t, alice, id, 'Private words')
    for (const [path, form] of [
      [`/ui/messages/${message}/edit`, { content: 'x' }],
      [`/ui/messages/${message}/delete`, {}],
      [`/ui/messages/${message}/reactions`, { emoji: '👍', added: '1' }],
    ] as const) {
      const reply = await eve.client.request('POST', path, { form, headers: HTMX })
      expect(reply.status).toBe(403)
      expect(reply.body).toContain('role="alert">You are not a member of this conversation</p>')
      expect(reply.body).not.toContain('Private words')
    }
    for (const path of [`/ui/messages/${message}`, `/ui/messages/${message}/edit`]) {
      const reply = await eve.client.get(path, HTMX)
      expect(reply.status).toBe(403)
      expect(reply.body).not.toContain('Private words')
    }
    expect((await eve.client.request('POST', '/ui/messages/no-such-message/delete', { form: {}, headers: HTMX })).status).toBe(404)
    expect((await eve.client.post(`/ui/messages/${message}/delete`, {})).status).toBe(403)
    expect(await stored(t, message)).toMatchObject({ content: 'Private words', deleted_at: null })
  })

  test('a deleted message cannot be edited: 409, said on it', async () => {
    await using t = await testApp()
    const { alice, id } = await direct(t)
    const message = await say(t, alice, id, 'Soon gone')
    await alice.client.request('POST', `/ui/messages/${message}/delete`, { form: {}, headers: HTMX })
    const reply = await alice.client.request('POST', `/ui/messages/${message}/edit`, { form: { content: 'Back?' }, headers: HTMX })
    expect(reply.status).toBe(409)
    expect(reply.body).toContain('This message was deleted: it can no longer be edited')
    expect(reply.body).toContain('<p class="deleted-note">This message was deleted</p>')
  })
})

describe('deleting a message', () => {
  test('its sender deletes it: the content is erased, the message keeps its place, shown as deleted', async () => {
    await using t = await testApp()
    const { alice, id } = await direct(t)
    const message = await say(t, alice, id, 'Oops')
    const reply = await alice.client.request('POST', `/ui/messages/${message}/delete`, { form: {}, headers: HTMX })
    expect(reply.status).toBe(200)
    expect(reply.body).toContain('<p class="deleted-note">This message was deleted</p>')
    expect(reply.body).not.toContain('Oops')
    expect(await stored(t, message)).toMatchObject({ content: '', deleted_at: expect.any(Number) })
    const page = (await alice.client.get(`/c/${id}`)).body
    expect(page).toContain(`id="msg-${message}" class="message deleted" data-seq="1"`)
  })

  test("in a group, another member may not delete someone's message; its creator may", async () => {
    await using t = await testApp()
    const { alice, bob, carol, id } = await group(t)
    await alice.client.post(`/c/${id}/members`, { usernames: carol.username })
    const bobs = await say(t, bob, id, "Bob's words")
    const refused = await carol.client.request('POST', `/ui/messages/${bobs}/delete`, { form: {}, headers: HTMX })
    expect(refused.status).toBe(403)
    expect(refused.body).toContain("role=\"alert\">Only its sender, or the group&#x27;s creator, may delete a message</p>")
    expect(await stored(t, bobs)).toMatchObject({ content: "Bob's words" })
    const done = await alice.client.post(`/ui/messages/${bobs}/delete`, {})
    expect(done.status).toBe(303)
    expect(await stored(t, bobs)).toMatchObject({ content: '' })
  })
})

describe('reactions', () => {
  test('a reaction is added and taken back, once each however often sent, and shown as a chip with its count', async () => {
    await using t = await testApp()
    const { alice, bob, id } = await direct(t)
    const message = await say(t, alice, id, 'Shipped!')
    for (let i = 0; i < 2; i++) {
      const reply = await bob.client.request('POST', `/ui/messages/${message}/reactions`, { form: { emoji: '🎉', added: '1' }, headers: HTMX })
      expect(reply.status).toBe(200)
      expect(reply.body).toContain('class="chip mine" aria-pressed="true"')
      expect(reply.body).toContain('<span class="count">1</span>')
    }
    expect(await reactionsOf(t, alice, id, message)).toEqual([{ emoji: '🎉', user_ids: [bob.id] }])
    const back = await bob.client.post(`/ui/messages/${message}/reactions`, { emoji: '🎉', added: '0' })
    expect(back.status).toBe(303)
    expect(back.location).toBe(`/c/${id}#msg-${message}`)
    expect(await reactionsOf(t, alice, id, message)).toEqual([])
  })

  test("a name typed in the picker's search field reacts with the emoji it names", async () => {
    await using t = await testApp()
    const { alice, bob, id } = await direct(t)
    const message = await say(t, alice, id, 'Hot take')
    for (const name of ['fire', ' Lit ', 'thumbs']) {
      expect((await bob.client.request('POST', `/ui/messages/${message}/reactions`, { form: { emoji: name, added: '1' }, headers: HTMX })).status).toBe(200)
    }
    expect(await reactionsOf(t, alice, id, message)).toEqual([
      { emoji: '🔥', user_ids: [bob.id] },
      { emoji: '👍', user_ids: [bob.id] },
    ])
  })

  test('what is not one emoji, or an unclear added, is refused on the message, never a 500', async () => {
    await using t = await testApp()
    const { alice, bob, id } = await direct(t)
    const message = await say(t, alice, id, 'Hi')
    for (const form of [{ emoji: 'xyzzy', added: '1' }, { emoji: 'x', added: '1' }, { emoji: '👍👍', added: '1' }, { emoji: '', added: '1' }, { emoji: '👍', added: 'yes' }]) {
      const reply = await bob.client.request('POST', `/ui/messages/${message}/reactions`, { form, headers: HTMX })
      expect(reply.status).toBe(422)
      expect(reply.body).toContain('role="alert">')
    }
    const page = await bob.client.post(`/ui/messages/${message}/reactions`, { emoji: 'xyzzy', added: '1' })
    expect(page.status).toBe(422)
    expect(page.body).toContain('role="alert">Reaction must be one emoji')
    expect(await reactionsOf(t, alice, id, message)).toEqual([])
  })
})

describe('replies', () => {
  test('Reply puts what is answered above the composer, keeping what was typed and the message_id; Cancel takes it away', async () => {
    await using t = await testApp()
    const { alice, bob, id } = await direct(t)
    const original = await say(t, alice, id, 'Lunch?')
    const composer = await bob.client.get(`/c/${id}/composer?reply_to=${original}&content=${encodeURIComponent('Yes <b>please</b>')}&message_id=keep-me`, HTMX)
    expect(composer.status).toBe(200)
    expect(composer.body).toContain('<form id="composer"')
    expect(composer.body).toContain('hx-swap-oob="outerHTML"')
    expect(composer.body).toContain(`<input type="hidden" name="reply_to" value="${original}">`)
    expect(composer.body).toContain('<span class="quote-text">Lunch?</span>')
    expect(composer.body).toContain('value="keep-me"')
    expect(composer.body).toContain('>Yes &lt;b&gt;please&lt;/b&gt;</textarea>')
    const cancelled = await bob.client.get(`/c/${id}/composer?content=still&message_id=keep-me`, HTMX)
    expect(cancelled.body).not.toContain('name="reply_to"')
    expect(cancelled.body).toContain('>still</textarea>')
    // Without JavaScript the link is the page, its composer replying.
    const page = await bob.client.get(`/c/${id}/composer?reply_to=${original}`)
    expect(page.location).toBe(`/c/${id}?reply_to=${original}#composer`)
    expect((await bob.client.get(`/c/${id}?reply_to=${original}`)).body).toContain(`<input type="hidden" name="reply_to" value="${original}">`)
  })

  test('a reply is stored with reply_to and shows a quote of the original that links to it', async () => {
    await using t = await testApp()
    const { alice, bob, id } = await direct(t)
    const original = await say(t, alice, id, 'Lunch?')
    const reply = await bob.client.request('POST', `/c/${id}/messages`, { form: { message_id: 'r-1', content: 'Yes!', reply_to: original }, headers: HTMX })
    expect(reply.status).toBe(200)
    expect(reply.body).toContain(`<a class="quote" href="#msg-${original}" data-reply-to="${original}" data-reply-seq="1"`)
    expect(reply.body).toContain('<span class="quote-text">Lunch?</span>')
    // The fresh composer replies to nothing.
    expect(reply.body).not.toContain('name="reply_to"')
    expect((await t.sql<{ reply_to: string }>("SELECT reply_to FROM messages WHERE message_id = 'r-1'"))[0]!.reply_to).toBe(original)
  })

  test('a reply to a message of another conversation is refused in the composer, keeping the text', async () => {
    await using t = await testApp()
    const { alice, bob, id } = await direct(t)
    const other = await direct(t)
    const elsewhere = await say(t, other.alice, other.id, 'Not yours')
    const reply = await bob.client.request('POST', `/c/${id}/messages`, { form: { message_id: 'r-2', content: 'Sneaky', reply_to: elsewhere }, headers: HTMX })
    expect(reply.status).toBe(422)
    expect(reply.body).toContain('role="alert">Reply must be the id of a message in the same conversation</p>')
    expect(reply.body).toContain('>Sneaky</textarea>')
    expect(reply.body).not.toContain('Not yours')
    expect((await t.sql("SELECT count(*) AS n FROM messages WHERE message_id = 'r-2'"))[0]).toEqual({ n: 0 })
    expect(alice.id).not.toBe(bob.id)
  })
})

describe("a group's members and name", () => {
  test('any member adds people by username: the header and row answer with the new count', async () => {
    await using t = await testApp()
    const { alice, bob, carol, id } = await group(t)
    const reply = await bob.client.request('POST', `/c/${id}/members`, { form: { usernames: ` ${carol.username} ` }, headers: HTMX })
    expect(reply.status).toBe(200)
    expect(reply.body).toContain(`<header id="header-${id}" class="pane-header" hx-swap-oob="outerHTML">`)
    expect(reply.body).toContain('<p class="member-count">3 members</p>')
    expect(reply.body).toContain(`<hx-partial hx-target="#conv-${id} .member-count" hx-swap="innerHTML">3 members</hx-partial>`)
    expect(await membersOf(t, id)).toEqual([alice.id, bob.id, carol.id].sort())
    // The new member can read the history.
    expect((await carol.client.get(`/c/${id}`)).status).toBe(200)
  })

  test('an unknown username is refused in the header, keeping what was typed, with the Members popover to open again', async () => {
    await using t = await testApp()
    const { alice, id } = await group(t)
    const reply = await alice.client.request('POST', `/c/${id}/members`, { form: { usernames: 'nobody_here' }, headers: HTMX })
    expect(reply.status).toBe(422)
    expect(reply.body).toContain('role="alert">Usernames include an unknown user: &quot;nobody_here&quot;</p>')
    expect(reply.body).toContain(`popover data-open>`)
    expect(reply.body).toContain('value="nobody_here"')
    const page = await alice.client.post(`/c/${id}/members`, { usernames: 'nobody_here' })
    expect(page.status).toBe(422)
    expect(page.body).toContain('Usernames include an unknown user')
  })

  test('its creator removes someone, who can read it no more; another member may not', async () => {
    await using t = await testApp()
    const { alice, bob, carol, id } = await group(t)
    await alice.client.post(`/c/${id}/members`, { usernames: carol.username })
    const refused = await bob.client.request('POST', `/c/${id}/members/${carol.id}/remove`, { form: {}, headers: HTMX })
    expect(refused.status).toBe(403)
    expect(refused.body).toContain("Only the group&#x27;s creator may remove someone else; anyone may leave")
    expect(await membersOf(t, id)).toContain(carol.id)
    const done = await alice.client.request('POST', `/c/${id}/members/${carol.id}/remove`, { form: {}, headers: HTMX })
    expect(done.status).toBe(200)
    expect(done.body).toContain('<p class="member-count">2 members</p>')
    expect(await membersOf(t, id)).not.toContain(carol.id)
    expect((await carol.client.get(`/c/${id}`)).status).toBe(403)
  })

  test('anyone leaves, back to their list', async () => {
    await using t = await testApp()
    const { bob, id } = await group(t)
    const reply = await bob.client.post(`/c/${id}/leave`, {})
    expect(reply.status).toBe(303)
    expect(reply.location).toBe('/')
    expect(await membersOf(t, id)).not.toContain(bob.id)
    expect((await bob.client.get('/')).body).not.toContain(`conv-${id}`)
  })

  test('Rename renames the group for its header and row; a blank name is refused', async () => {
    await using t = await testApp()
    const { bob, id } = await group(t)
    const reply = await bob.client.request('POST', `/c/${id}/rename`, { form: { title: 'Launch <Crew>' }, headers: HTMX })
    expect(reply.status).toBe(200)
    expect(reply.body).toContain('<h2><span class="group-icon" aria-label="Group">👥</span> Launch &lt;Crew&gt;</h2>')
    expect(reply.body).toContain(`<hx-partial hx-target="#conv-${id} .conversation-name" hx-swap="innerHTML"><span class="group-icon" aria-label="Group">👥</span> Launch &lt;Crew&gt;</hx-partial>`)
    const blank = await bob.client.request('POST', `/c/${id}/rename`, { form: { title: '  ' }, headers: HTMX })
    expect(blank.status).toBe(422)
    expect(blank.body).toContain('role="alert">Group name must not be blank</p>')
    expect((await t.sql('SELECT title FROM conversations WHERE id = ?', id))[0]).toEqual({ title: 'Launch <Crew>' })
  })

  test("a 1-on-1 has no members to change nor a name: 409, shown; a non-member is refused", async () => {
    await using t = await testApp()
    const { alice, id } = await direct(t)
    const carol = await person(t)
    const page = (await alice.client.get(`/c/${id}`)).body
    expect(page).not.toContain('group-tools')
    const add = await alice.client.request('POST', `/c/${id}/members`, { form: { usernames: carol.username }, headers: HTMX })
    expect(add.status).toBe(409)
    expect(add.body).toContain('A 1-on-1 keeps its two members and has no title: create a group instead')
    expect((await alice.client.post(`/c/${id}/rename`, { title: 'x' })).status).toBe(409)
    expect((await alice.client.post(`/c/${id}/leave`, {})).status).toBe(409)
    const stranger = await carol.client.request('POST', `/c/${id}/rename`, { form: { title: 'mine now' }, headers: HTMX })
    expect(stranger.status).toBe(403)
    expect(stranger.body).toContain('role="alert">You are not a member of this conversation</p>')
    expect(await membersOf(t, id)).toHaveLength(2)
  })
})

describe('catching up: GET /c/{id}/events', () => {
  test('renders the changes after a position: new messages, changed ones replaced where shown, the header, and the new position', async () => {
    await using t = await testApp()
    const { alice, bob, carol, id } = await group(t)
    const first = await say(t, alice, id, 'First') // event 1
    await say(t, bob, id, 'Second') // 2
    await call(t.app, 'PATCH', `/messages/${first}`, { token: alice.token, body: { content: 'First, edited' } }) // 3
    await call(t.app, 'PUT', `/messages/${first}/reactions/${encodeURIComponent('👍')}`, { token: bob.token }) // 4
    await alice.client.post(`/c/${id}/members`, { usernames: carol.username }) // 5
    await say(t, carol, id, 'Third') // 6
    const reply = await bob.client.get(`/c/${id}/events?after=2`, HTMX)
    expect(reply.status).toBe(200)
    expect(reply.headers.get('x-has-more')).toBe('false')
    const [added, replaced] = reply.body.split('hx-swap="merge existing"')
    expect(added).toContain('Third')
    expect(added).not.toContain('First, edited')
    expect(replaced).toContain('First, edited')
    expect(replaced).toContain('<span class="count">1</span>')
    expect(replaced).not.toContain('Second')
    expect(reply.body).toContain(`<hx-partial hx-target="#header-${id}" hx-swap="refresh">`)
    expect(reply.body).toContain('<p class="member-count">3 members</p>')
    expect(reply.body).toContain(`<hx-position conversation="${id}" after="2" through="6"></hx-position>`)
    // Every message in it shows at least the last change it brings.
    expect([...reply.body.matchAll(/data-version="(\d+)"/g)].map((m) => m[1])).toEqual(['6', '6'])

    const none = await bob.client.get(`/c/${id}/events?after=6`, HTMX)
    expect(none.body).toContain(`<hx-position conversation="${id}" after="6" through="6"></hx-position>`)
    expect(none.body).not.toContain('class="message')
  })

  test('a page of them at a time, saying whether more follow', async () => {
    await using t = await testApp()
    const { alice, bob, id } = await group(t)
    for (let i = 1; i <= 5; i++) await say(t, alice, id, `m${i}`)
    const first = await bob.client.get(`/c/${id}/events?after=0&limit=3`, HTMX)
    expect(first.headers.get('x-has-more')).toBe('true')
    expect(first.body).toContain('after="0" through="3"')
    const rest = await bob.client.get(`/c/${id}/events?after=3&limit=3`, HTMX)
    expect(rest.headers.get('x-has-more')).toBe('false')
    expect(rest.body).toContain('after="3" through="5"')
  })

  test('past retention it is 410, for the page to load the conversation again', async () => {
    await using t = await testApp()
    const { alice, bob, id } = await group(t)
    const message = await say(t, alice, id, 'Old')
    await call(t.app, 'PATCH', `/messages/${message}`, { token: alice.token, body: { content: 'Older' } })
    expect(await pruneChanges(t.deps.store, 30, Date.now() + 31 * 86_400_000)).toBeGreaterThan(0)
    const reply = await bob.client.get(`/c/${id}/events?after=0`, HTMX)
    expect(reply.status).toBe(410)
    expect(reply.body).toContain('role="alert">')
  })

  test('someone no longer in the group is told so in place of the composer; a bad position is 422; signed out, 401', async () => {
    await using t = await testApp()
    const { alice, carol, id } = await group(t)
    await alice.client.post(`/c/${id}/members`, { usernames: carol.username })
    await alice.client.post(`/c/${id}/members/${carol.id}/remove`, {})
    await say(t, alice, id, 'After Carol left')
    const gone = await carol.client.get(`/c/${id}/events?after=0`, HTMX)
    expect(gone.status).toBe(403)
    expect(gone.body).toContain('You are no longer a member of this group.')
    expect(gone.body).not.toContain('After Carol left')
    expect((await alice.client.get(`/c/${id}/events?after=abc`, HTMX)).status).toBe(422)
    const signedOut = await new FormClient(t.app).get(`/c/${id}/events?after=0`, HTMX)
    expect(signedOut.status).toBe(401)
    expect(signedOut.headers.get('hx-redirect')).toBe('/')
  })
})

describe('CSRF: the new forms come from our own pages or change nothing', () => {
  test.each([
    ['edit', (m: string) => `/ui/messages/${m}/edit`, { content: 'forged' }],
    ['delete', (m: string) => `/ui/messages/${m}/delete`, {}],
    ['react', (m: string) => `/ui/messages/${m}/reactions`, { emoji: '👍', added: '1' }],
  ] as const)('%s from another site is 403', async (_, path, form) => {
    await using t = await testApp()
    const { alice, id } = await direct(t)
    const message = await say(t, alice, id, 'Untouched')
    const forged: Record<string, string>[] = [{ 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': '', origin: 'https://evil.example' }, { 'sec-fetch-site': '' }]
    for (const headers of forged) {
      expect((await alice.client.request('POST', path(message), { form, headers })).status).toBe(403)
    }
    expect(await stored(t, message)).toMatchObject({ content: 'Untouched', edited_at: null, deleted_at: null })
    expect(await reactionsOf(t, alice, id, message)).toEqual([])
  })

  test.each([
    ['add members', (c: string) => `/c/${c}/members`, (p: Person) => ({ usernames: p.username })],
    ['remove a member', (c: string, p: Person) => `/c/${c}/members/${p.id}/remove`, () => ({})],
    ['leave', (c: string) => `/c/${c}/leave`, () => ({})],
    ['rename', (c: string) => `/c/${c}/rename`, () => ({ title: 'Forged' })],
  ] as const)('%s from another site is 403', async (_, path, form) => {
    await using t = await testApp()
    const { alice, bob, carol, id } = await group(t)
    const target = _ === 'add members' ? carol : bob
    const reply = await alice.client.request('POST', path(id, target), { form: form(target), headers: { 'sec-fetch-site': 'cross-site' } })
    expect(reply.status).toBe(403)
    expect(await membersOf(t, id)).toEqual([alice.id, bob.id].sort())
    expect((await t.sql('SELECT title FROM conversations WHERE id = ?', id))[0]).toEqual({ title: 'Launch Team' })
  })
})
