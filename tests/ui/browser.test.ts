import { afterAll, describe, expect, setSystemTime, test } from 'bun:test'
import type { Page } from 'playwright-core'
import { ACCESS_COOKIE } from '../../src/auth/credentials'
import * as conversations from '../../src/conversations/service'
import * as users from '../../src/users/service'
import { captureLogs, listen, testApp, type TestApp } from '../support/app'
import { closeBrowser, person, screenshot, skipBrowserTests, watchPage } from '../support/browser'
import { account, call, conversation, send, type Account } from '../support/http'
import {
  composerId,
  contents,
  conversationIdFromUrl,
  freshComposer,
  live,
  logIn,
  markWindow,
  messageCount,
  messageIn,
  noProblems,
  open,
  PASSWORD,
  type Probed,
  reconnected,
  row,
  sendFromUi,
  settled,
  signUp,
  submitLogin,
  unreadShown,
  windowKept,
} from '../support/ui'
import { TestSocket } from '../support/ws'

// The web UI in a real Chromium: every test runs its own server and one browser context per user.

afterAll(closeBrowser)

describe.skipIf(skipBrowserTests)('the web UI in Chromium', () => {
  test('two people sign up through the UI and land on the chat page signed in', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    await using alice = await person('alice')
    await using bob = await person('bob')

    await signUp(alice, http, 'alice', 'Alice Liddell')
    await signUp(bob, http, 'bob', 'Bob Builder')

    for (const [p, name, other] of [
      [alice, 'Alice Liddell', 'Bob Builder'],
      [bob, 'Bob Builder', 'Alice Liddell'],
    ] as const) {
      expect(p.page.url()).toBe(`${http}/`)
      expect(await p.page.getByRole('button', { name: 'Logout' }).isVisible()).toBe(true)
      expect(await p.page.locator('.topbar .me').textContent()).toBe(name)
      expect(await p.page.locator('.empty').isVisible()).toBe(true)
      // The session is an HttpOnly cookie, out of reach of any script.
      const cookies = await p.context.cookies()
      expect(cookies.length).toBeGreaterThan(0)
      expect(cookies.every((c) => c.httpOnly)).toBe(true)
      await p.page.reload()
      await p.page.getByRole('button', { name: new RegExp(other) }).waitFor()
    }
    expect((await t.sql<{ n: number }>('SELECT count(*) AS n FROM users'))[0]!.n).toBe(2)
    noProblems(alice, bob)
  }, 30_000)

  test('a 1-on-1 opened from the Users list is reused, and messages go both ways live', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    await using alice = await person('alice')
    await using bob = await person('bob')
    await signUp(bob, http, 'bob', 'Bob Builder')
    await signUp(alice, http, 'alice', 'Alice Liddell')

    await alice.page.getByRole('button', { name: /Bob Builder/ }).click()
    await alice.page.waitForURL(/\/c\/[^/]+$/)
    const id = conversationIdFromUrl(alice.page)

    // Again from the Users list on /, and from bob's side: the same conversation each time.
    await alice.page.goto(`${http}/`)
    await alice.page.getByRole('button', { name: /Bob Builder/ }).click()
    await alice.page.waitForURL(`${http}/c/${id}`)
    await bob.page.reload()
    await bob.page.getByRole('button', { name: /Alice Liddell/ }).click()
    await bob.page.waitForURL(`${http}/c/${id}`)
    expect(await alice.page.locator('#conversation-list > li.conversation').count()).toBe(1)
    const login = await call(t.app, 'POST', '/auth/login', { body: { username: 'alice', password: PASSWORD } })
    const listed = await call(t.app, 'GET', '/conversations', { token: login.body.access_token })
    expect(listed.body.conversations.map((c: { id: string }) => c.id)).toEqual([id])

    await live(alice.page)
    await live(bob.page)
    await markWindow(alice.page)
    await markWindow(bob.page)

    await sendFromUi(alice.page, 'Hi Bob!')
    await messageIn(bob.page, 'Hi Bob!').waitFor()
    await sendFromUi(bob.page, 'Hi Alice, good to see you.')
    await messageIn(alice.page, 'Hi Alice, good to see you.').waitFor()

    // Shift+Enter adds a line; Enter then sends the two lines as one message.
    const before = await composerId(alice.page)
    const box = alice.page.getByLabel('Message', { exact: true })
    await box.pressSequentially('line one')
    await box.press('Shift+Enter')
    await box.pressSequentially('line two')
    expect(await box.inputValue()).toBe('line one\nline two')
    await box.press('Enter')
    await freshComposer(alice.page, before)
    await bob.page.locator('ol.message-list > li.message').nth(2).waitFor()

    const expected = ['Hi Bob!', 'Hi Alice, good to see you.', 'line one\nline two']
    expect(await contents(alice.page)).toEqual(expected)
    expect(await contents(bob.page)).toEqual(expected)
    expect(await messageCount(t)).toBe(3)
    // No sender names in a 1-on-1; neither page was reloaded to get there.
    expect(await alice.page.locator('.message .sender').count()).toBe(0)
    expect(await windowKept(alice.page)).toBe(true)
    expect(await windowKept(bob.page)).toBe(true)
    noProblems(alice, bob)
  }, 60_000)

  test('a new group reaches a member who has only the chat page open, with its icon, size and an unread count', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    await account(t.app, 'alice', 'Alice Liddell')
    await account(t.app, 'bob', 'Bob Builder')
    await account(t.app, 'carol', 'Carol Danvers')
    await using alice = await person('alice')
    await using carol = await person('carol')
    await logIn(carol, http, 'carol')
    await logIn(alice, http, 'alice')

    await alice.page.getByText('+ New Group Chat').click()
    await alice.page.getByLabel('Group Name').fill('Launch Team')
    await alice.page.getByLabel('Participants').fill('bob, carol')
    await alice.page.getByRole('button', { name: 'Create Group' }).click()
    await alice.page.waitForURL(/\/c\/[^/]+$/)
    const id = conversationIdFromUrl(alice.page)
    expect(await alice.page.locator('.pane-header h2').textContent()).toContain('Launch Team')
    expect(await alice.page.locator('.pane-header h2 .group-icon').textContent()).toBe('👥')
    expect(await alice.page.locator('.pane-header .member-count').textContent()).toBe('3 members')
    await live(alice.page)

    // Carol sits on / with nothing open; the group is not in her list yet.
    await markWindow(carol.page)
    expect(await row(carol.page, id).count()).toBe(0)

    await sendFromUi(alice.page, 'Kick-off at 10')
    const carolsRow = row(carol.page, id)
    await carolsRow.waitFor()
    expect(await carolsRow.locator('.group-icon').textContent()).toBe('👥')
    expect(await carolsRow.locator('.conversation-name').textContent()).toContain('Launch Team')
    expect(await carolsRow.locator('.member-count').textContent()).toBe('3 members')
    expect(await unreadShown(carol.page, id)).toBe('1')
    expect(await carol.page.locator('#conversation-list > li.conversation').first().getAttribute('id')).toBe(`conv-${id}`)
    expect(await windowKept(carol.page)).toBe(true)
    // Alice's own row: open, and her own message, so no count.
    expect(await unreadShown(alice.page, id)).toBe('')

    // In the group, others' messages carry the sender's name; one's own do not show it.
    await carolsRow.locator('a').click()
    await carol.page.waitForURL(`${http}/c/${id}`)
    await live(carol.page)
    const fromAlice = messageIn(carol.page, 'Kick-off at 10')
    expect(await fromAlice.locator('.sender').textContent()).toBe('Alice Liddell @alice')
    expect(await fromAlice.locator('.sender').isVisible()).toBe(true)
    await sendFromUi(carol.page, 'On it')
    expect(await messageIn(carol.page, 'On it').locator('.sender').isVisible()).toBe(false)
    const fromCarol = messageIn(alice.page, 'On it')
    await fromCarol.waitFor()
    expect(await fromCarol.locator('.sender').textContent()).toBe('Carol Danvers @carol')
    expect(await fromCarol.locator('.sender').isVisible()).toBe(true)
    expect(await messageIn(alice.page, 'Kick-off at 10').locator('.sender').isVisible()).toBe(false)
    noProblems(alice, carol)
  }, 60_000)

  test('a message in another conversation moves it to the top of the list, unread, without touching the open one', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app, 'alice', 'Alice Liddell')
    const bob = await account(t.app, 'bob', 'Bob Builder')
    const carol = await account(t.app, 'carol', 'Carol Danvers')
    await using bobs = await person('bob')

    const withCarol = await conversation(t.app, carol, [bob])
    await send(t.app, carol, withCarol.id, 'Lunch later?')
    await logIn(bobs, http, 'bob') // takes a password hash's time: the next activity is strictly newer
    const withAlice = await conversation(t.app, alice, [bob])
    await send(t.app, alice, withAlice.id, 'Morning!')

    await open(bobs, http, withAlice.id)
    const ids = async () => bobs.page.locator('#conversation-list > li.conversation').evaluateAll((rows) => rows.map((r) => r.id))
    expect(await ids()).toEqual([`conv-${withAlice.id}`, `conv-${withCarol.id}`])
    await markWindow(bobs.page)

    await send(t.app, carol, withCarol.id, 'Say 12:30?')
    await bobs.page.locator(`#conversation-list > li.conversation:first-child[id="conv-${withCarol.id}"]`).waitFor()
    expect(await ids()).toEqual([`conv-${withCarol.id}`, `conv-${withAlice.id}`])
    expect(await unreadShown(bobs.page, withCarol.id)).toBe('2')
    expect(await unreadShown(bobs.page, withAlice.id)).toBe('')
    // The open conversation is untouched: carol's message is not in it.
    expect(bobs.page.url()).toBe(`${http}/c/${withAlice.id}`)
    expect(await contents(bobs.page)).toEqual(['Morning!'])

    // A message in the open conversation moves it back up, with no count (it is being read).
    await send(t.app, alice, withAlice.id, 'Are you there?')
    await messageIn(bobs.page, 'Are you there?').waitFor()
    await bobs.page.locator(`#conversation-list > li.conversation:first-child[id="conv-${withAlice.id}"]`).waitFor()
    expect(await ids()).toEqual([`conv-${withAlice.id}`, `conv-${withCarol.id}`])
    expect(await unreadShown(bobs.page, withAlice.id)).toBe('')
    expect(await unreadShown(bobs.page, withCarol.id)).toBe('2')
    expect(await windowKept(bobs.page)).toBe(true)

    await row(bobs.page, withCarol.id).locator('a').click()
    await bobs.page.waitForURL(`${http}/c/${withCarol.id}`)
    expect(await contents(bobs.page)).toEqual(['Lunch later?', 'Say 12:30?'])
    noProblems(bobs)
  }, 60_000)

  /**
   * Bob in 53 groups with Alice (more than a page), made a second apart a few minutes ago (so a
   * message now is newer than all of them), and the order the API lists them in for him.
   */
  async function moreThanAPage(t: TestApp) {
    const alice = await account(t.app, 'alice', 'Alice Liddell')
    const bob = await account(t.app, 'bob', 'Bob Builder')
    const creator = (await users.byId(t.deps.store, alice.id))!
    const start = Date.now() - 300_000
    try {
      for (let i = 0; i < 53; i++) {
        setSystemTime(start + i * 1_000)
        await conversations.create(t.deps, creator, { title: `Group ${i}`, member_ids: [bob.id], is_group: true })
      }
    } finally {
      setSystemTime()
    }
    const first = await call(t.app, 'GET', '/conversations', { token: bob.token })
    const rest = await call(t.app, 'GET', `/conversations?cursor=${first.body.next_cursor}`, { token: bob.token })
    expect(rest.body.next_cursor).toBeNull()
    const order = [...first.body.conversations, ...rest.body.conversations].map((c: { id: string }) => `conv-${c.id}`)
    expect(order.length).toBe(53)
    return { alice, bob, order }
  }

  const listedIds = (page: Page) => page.locator('#conversation-list > li.conversation').evaluateAll((rows) => rows.map((r) => r.id))

  test('more than a page of conversations: the sidebar shows the first 50, Load more shows the rest in order, each once', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const { alice, order } = await moreThanAPage(t)
    await using bobs = await person('bob')
    await logIn(bobs, http, 'bob')
    expect(await listedIds(bobs.page)).toEqual(order.slice(0, 50))
    await markWindow(bobs.page)

    await bobs.page.getByRole('link', { name: 'Load more conversations' }).click()
    await bobs.page.locator('#conversation-list > li.conversation').nth(52).waitFor()
    await settled(bobs)
    expect(await listedIds(bobs.page)).toEqual(order)
    expect(await bobs.page.getByRole('link', { name: 'Load more conversations' }).count()).toBe(0)
    expect(await windowKept(bobs.page)).toBe(true) // appended in place, not a navigation

    // A live message in a conversation of the second page moves its row to the top, not a copy of it.
    const last = order.at(-1)!.slice('conv-'.length)
    await send(t.app, alice, last, 'From the bottom of the list')
    await bobs.page.locator(`#conversation-list > li.conversation:first-child[id="conv-${last}"]`).waitFor()
    expect(await listedIds(bobs.page)).toEqual([`conv-${last}`, ...order.slice(0, -1)])
    noProblems(bobs)
  }, 60_000)

  test('a conversation that moves to the top while Load more is in flight is listed once, at the top', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const { alice, order } = await moreThanAPage(t)
    await using bobs = await person('bob')
    await logIn(bobs, http, 'bob')
    const onSecondPage = order[51]!.slice('conv-'.length)

    // The next page is read by the server now, before the message, and reaches the page after its push.
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    let read!: () => void
    const pageRead = new Promise<void>((resolve) => (read = resolve))
    await bobs.page.route('**/ui/sidebar?cursor=*', async (route) => {
      const response = await route.fetch()
      read()
      await released
      await route.fulfill({ response })
    })
    await bobs.page.getByRole('link', { name: 'Load more conversations' }).click()
    await pageRead
    await send(t.app, alice, onSecondPage, 'While you were scrolling')
    await bobs.page.locator(`#conversation-list > li.conversation:first-child[id="conv-${onSecondPage}"]`).waitFor()
    release()
    await bobs.page.locator('#conversation-list > li.conversation').nth(52).waitFor()
    await settled(bobs)
    expect(await listedIds(bobs.page)).toEqual([`conv-${onSecondPage}`, ...order.filter((id) => id !== `conv-${onSecondPage}`)])
    // The row kept is the live one, with its unread count.
    expect(await unreadShown(bobs.page, onSecondPage)).not.toBe('')
    noProblems(bobs)
  }, 60_000)

  test('after a reconnect the sidebar is fetched again: the first page, with a Load more that still works', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const { alice, order } = await moreThanAPage(t)
    await using bobs = await person('bob')
    await logIn(bobs, http, 'bob')
    await bobs.page.getByRole('link', { name: 'Load more conversations' }).click()
    await bobs.page.locator('#conversation-list > li.conversation').nth(52).waitFor()
    await markWindow(bobs.page)

    await using t2 = await t.restart()
    // Missed while the page was away: a message that moves a second-page conversation to the top.
    const login = await call(t2.app, 'POST', '/auth/login', { body: { username: 'alice', password: PASSWORD } })
    const moved = order[52]!.slice('conv-'.length)
    expect((await send(t2.app, { ...alice, token: login.body.access_token }, moved, 'while you were away')).status).toBe(201)
    await reconnected(bobs)
    await bobs.page.locator(`#conversation-list > li.conversation:first-child[id="conv-${moved}"]`).waitFor()
    await settled(bobs)
    const now = [`conv-${moved}`, ...order.slice(0, 52)]
    expect(await listedIds(bobs.page)).toEqual(now.slice(0, 50))
    await bobs.page.getByRole('link', { name: 'Load more conversations' }).click()
    await bobs.page.locator('#conversation-list > li.conversation').nth(52).waitFor()
    await settled(bobs)
    expect(await listedIds(bobs.page)).toEqual(now)
    expect(await windowKept(bobs.page)).toBe(true)
    noProblems(bobs)
  }, 60_000)

  test('without JavaScript, Load more is a link to a page listing the next conversations', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const { order } = await moreThanAPage(t)
    await using bobs = await person('bob', undefined, { javaScriptEnabled: false })
    await submitLogin(bobs.page, http, 'bob')
    await bobs.page.getByRole('button', { name: 'Logout' }).waitFor()
    expect(await listedIds(bobs.page)).toEqual(order.slice(0, 50))
    await bobs.page.getByRole('link', { name: 'Load more conversations' }).click()
    await bobs.page.waitForURL(/\/\?cursor=/)
    expect(await listedIds(bobs.page)).toEqual(order.slice(50))
    noProblems(bobs)
  }, 60_000)

  test('a reload shows the same messages in the same order', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app, 'alice', 'Alice Liddell')
    const bob = await account(t.app, 'bob', 'Bob Builder')
    const { id } = await conversation(t.app, alice, [bob])
    await using alices = await person('alice')
    await using bobs = await person('bob')
    await logIn(alices, http, 'alice')
    await logIn(bobs, http, 'bob')
    await open(alices, http, id)
    await open(bobs, http, id)

    const said = ['one', 'two', 'three', 'four', 'five']
    for (const [i, text] of said.entries()) {
      const [from, to] = i % 2 === 0 ? [alices, bobs] : [bobs, alices]
      await sendFromUi(from.page, text)
      await messageIn(to.page, text).waitFor()
    }
    const shown = (page: Page) =>
      page.locator('ol.message-list > li.message').evaluateAll((items) =>
        items.map((m) => ({ seq: (m as HTMLElement).dataset.seq, sender: (m as HTMLElement).dataset.sender, content: m.querySelector('.content')?.textContent })),
      )
    const before = await shown(alices.page)
    expect(before.map((m) => m.content)).toEqual(said)
    expect(before.map((m) => Number(m.seq))).toEqual([1, 2, 3, 4, 5])
    expect(before.map((m) => m.sender)).toEqual([alice.id, bob.id, alice.id, bob.id, alice.id])
    expect(await shown(bobs.page)).toEqual(before)

    await alices.page.reload()
    await live(alices.page)
    expect(await shown(alices.page)).toEqual(before)
    await bobs.page.reload()
    await live(bobs.page)
    expect(await shown(bobs.page)).toEqual(before)
    noProblems(alices, bobs)
  }, 60_000)

  test('markup in names, messages and group titles is shown as text and never runs', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const IMG = '<img src=x onerror=alert(1)>'
    const HTMX = '<div hx-get="/auth/me" hx-trigger="load">x</div>'
    const TITLE = '<script>alert(1)</script>'
    await account(t.app, 'bob', 'Bob Builder')
    await using mallory = await person('mallory')
    await using bob = await person('bob')
    const requests: string[] = []
    for (const p of [mallory, bob]) p.context.on('request', (r) => requests.push(new URL(r.url()).pathname))

    await signUp(mallory, http, 'mallory', IMG)
    await logIn(bob, http, 'bob')
    expect(await mallory.page.locator('.topbar .me').textContent()).toBe(IMG)

    await mallory.page.getByText('+ New Group Chat').click()
    await mallory.page.getByLabel('Group Name').fill(TITLE)
    await mallory.page.getByLabel('Participants').fill('bob')
    await mallory.page.getByRole('button', { name: 'Create Group' }).click()
    await mallory.page.waitForURL(/\/c\/[^/]+$/)
    const id = conversationIdFromUrl(mallory.page)
    await live(mallory.page)
    expect(await mallory.page.locator('.pane-header h2').textContent()).toContain(TITLE)

    // The first message reaches bob live (the row is rendered for the push), the second while he has the group open.
    await sendFromUi(mallory.page, IMG)
    await row(bob.page, id).waitFor()
    expect(await row(bob.page, id).locator('.conversation-name').textContent()).toContain(TITLE)
    await row(bob.page, id).locator('a').click()
    await bob.page.waitForURL(`${http}/c/${id}`)
    await live(bob.page)
    await sendFromUi(mallory.page, HTMX)
    await messageIn(bob.page, HTMX).waitFor()
    await settled(bob)
    await settled(mallory)

    for (const p of [mallory, bob]) {
      expect(await contents(p.page)).toEqual([IMG, HTMX])
      expect(await p.page.locator('.pane-header h2').textContent()).toContain(TITLE)
      expect(await row(p.page, id).locator('.conversation-name').textContent()).toContain(TITLE)
      expect(await p.page.locator('.message .content img, .message .content div, .sidebar img, .topbar img, .pane-header img').count()).toBe(0)
      expect(await p.page.locator('img').count()).toBe(0)
      expect(await p.page.locator('[hx-get="/auth/me"], [onerror]').count()).toBe(0)
      expect(await p.page.locator('script:not([src])').count()).toBe(0)
    }
    // Bob sees mallory's name as text: on her messages and in his Users list.
    expect(await bob.page.locator('.message .sender').allTextContents()).toEqual([`${IMG} @mallory`, `${IMG} @mallory`])
    expect(await bob.page.getByRole('button', { name: /@mallory/ }).textContent()).toContain(IMG)

    expect(requests.filter((path) => path === '/auth/me' || path === '/x')).toEqual([])
    expect(mallory.problems.dialogs).toEqual([])
    expect(bob.problems.dialogs).toEqual([])
    noProblems(mallory, bob)
  }, 60_000)

  test('a double-clicked Send and a double Enter each store exactly one message', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app, 'alice', 'Alice Liddell')
    const bob = await account(t.app, 'bob', 'Bob Builder')
    const { id } = await conversation(t.app, alice, [bob])
    await using alices = await person('alice')
    await logIn(alices, http, 'alice')
    await open(alices, http, id)
    const posts: string[] = []
    alices.page.on('request', (r) => {
      if (r.method() === 'POST' && new URL(r.url()).pathname === `/c/${id}/messages`) posts.push(r.postData() ?? '')
    })

    let before = await composerId(alices.page)
    await alices.page.getByLabel('Message', { exact: true }).fill('only once')
    await alices.page.getByRole('button', { name: 'Send' }).dblclick()
    await freshComposer(alices.page, before)
    await messageIn(alices.page, 'only once').waitFor()
    await settled(alices)
    expect(await messageCount(t)).toBe(1)
    expect(await messageIn(alices.page, 'only once').count()).toBe(1)

    before = await composerId(alices.page)
    const box = alices.page.getByLabel('Message', { exact: true })
    await box.fill('enter twice')
    await box.press('Enter')
    await box.press('Enter')
    await freshComposer(alices.page, before)
    await messageIn(alices.page, 'enter twice').waitFor()
    await settled(alices)
    expect(await messageCount(t)).toBe(2)
    expect(await contents(alices.page)).toEqual(['only once', 'enter twice'])
    // However many posts the browser made, the twins carried one message_id: the stored one.
    const ids = posts.map((body) => body.match(/message_id(?:=|"\r\n\r\n)([0-9A-Za-z-]+)/)?.[1])
    const stored = (await t.sql<{ message_id: string }>('SELECT message_id FROM messages ORDER BY seq')).map((r) => r.message_id)
    expect([...new Set(ids)]).toEqual(stored)
    console.info(`[double send] the browser made ${posts.length} POSTs for the 2 messages`)
    noProblems(alices)
  }, 60_000)

  test('after a server restart the page reconnects by itself and shows a missed message exactly once', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app, 'alice', 'Alice Liddell')
    const bob = await account(t.app, 'bob', 'Bob Builder')
    const { id } = await conversation(t.app, alice, [bob])
    await using alices = await person('alice')
    await using bobs = await person('bob')
    await logIn(alices, http, 'alice')
    await logIn(bobs, http, 'bob')
    await open(alices, http, id)
    await open(bobs, http, id)
    await sendFromUi(alices.page, 'before the restart')
    await messageIn(bobs.page, 'before the restart').waitFor()
    await markWindow(alices.page)
    expect((await alices.probe()).connections).toBe(1)

    await using t2 = await t.restart()
    const login = await call(t2.app, 'POST', '/auth/login', { body: { username: 'bob', password: PASSWORD } })
    expect(login.status).toBe(200)
    const reconnectedBeforePost = (await alices.probe()).connections > 1
    const posted = await send(t2.app, { ...bob, token: login.body.access_token } satisfies Account, id, 'sent while you were away')
    expect(posted.status).toBe(201)

    await messageIn(alices.page, 'sent while you were away').waitFor({ timeout: 15_000 })
    await reconnected(alices)
    await settled(alices)
    expect(await messageIn(alices.page, 'sent while you were away').count()).toBe(1)
    expect(await contents(alices.page)).toEqual(['before the restart', 'sent while you were away'])
    expect(await windowKept(alices.page)).toBe(true)
    console.info(`[restart] the message was posted ${reconnectedBeforePost ? 'after' : 'before'} alice's page reconnected`)

    // And live delivery works again, over the new connection.
    await reconnected(bobs)
    await settled(bobs)
    await sendFromUi(bobs.page, 'back online')
    await messageIn(alices.page, 'back online').waitFor()
    await settled(alices)
    expect(await contents(alices.page)).toEqual(['before the restart', 'sent while you were away', 'back online'])
    expect(await windowKept(alices.page)).toBe(true)
    expect(await messageCount(t2)).toBe(3)
    noProblems(alices, bobs)
  }, 60_000)

  test('screenshots of the login page and a busy group at phone and desktop sizes', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app, 'alice', 'Alice Liddell')
    const bob = await account(t.app, 'bob', 'Bob Builder')
    const carol = await account(t.app, 'carol', 'Carol Danvers')
    const group = await conversation(t.app, alice, [bob, carol], 'Launch Team')
    await conversation(t.app, bob, [alice]) // a 1-on-1 too, for the sidebar
    const script: [Account, string][] = [
      [alice, 'Morning all! Launch checklist is in the doc.'],
      [bob, 'Thanks. I will take the release notes.'],
      [alice, 'Great. Carol is on the status page.'],
      [bob, 'Staging deploy is green ✅'],
      [alice, 'Smoke tests next, then we freeze.'],
      [bob, 'One flaky test in the payments suite, rerunning it now so we can be sure it is the test and not the code. If it fails twice I will open an issue and page the owner.'],
      [alice, 'ok'],
      [bob, 'Rerun passed.\nSecond run passed too.\nCalling it flaky.'],
      [alice, 'Link for the notes: https://example.com/releases/2024/very/long/path/that/does/not/break/anywhere/at/all/unless/the/css/wraps/it'],
      [bob, 'Release notes drafted.'],
      [alice, 'Shipping at 15:00 👍'],
      [bob, '🚀'],
    ]
    for (const [who, text] of script) expect((await send(t.app, who, group.id, text)).status).toBe(201)

    for (const [label, viewport] of [
      ['375', { width: 375, height: 812 }],
      ['1440', { width: 1440, height: 900 }],
    ] as const) {
      await using visitor = await person(`visitor-${label}`, viewport)
      await visitor.page.goto(`${http}/`)
      await visitor.page.getByRole('button', { name: 'Login' }).waitFor()
      await screenshot(visitor.page, `login-${label}`)
      const noSideScroll = await visitor.page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth)
      expect(noSideScroll).toBe(true)

      await using alices = await person(`alice-${label}`, viewport)
      await logIn(alices, http, 'alice')
      await screenshot(alices.page, `sidebar-${label}`)
      await open(alices, http, group.id)
      await alices.page.locator('ol.message-list > li.message').nth(script.length - 1).waitFor()
      expect(await contents(alices.page)).toEqual(script.map(([, text]) => text))
      await screenshot(alices.page, `group-${label}`)

      // Nothing sticks out sideways; the newest message and the composer are on screen.
      const layout = await alices.page.evaluate(() => {
        const inView = (el: Element | null) => {
          const r = el?.getBoundingClientRect()
          return !!r && r.top >= 0 && r.bottom <= innerHeight + 1 && r.left >= 0 && r.right <= innerWidth + 1
        }
        return {
          noSideScroll: document.documentElement.scrollWidth <= document.documentElement.clientWidth,
          lastMessage: inView(document.querySelector('.message-list > li.message:last-child')),
          composer: inView(document.querySelector('#composer')),
          messagesFit: [...document.querySelectorAll('.message')].every((m) => m.scrollWidth <= m.clientWidth + 1),
        }
      })
      expect(layout).toEqual({ noSideScroll: true, lastMessage: true, composer: true, messagesFit: true })
      expect(await alices.page.locator(`.message[data-sender="${bob.id}"] .sender`).first().isVisible()).toBe(true)
      expect(await alices.page.locator(`.message[data-sender="${alice.id}"] .sender`).first().isVisible()).toBe(false)
      noProblems(visitor, alices)
    }
  }, 60_000)

  test('logout returns to the login page, and a conversation page then sends to sign-in', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app, 'alice', 'Alice Liddell')
    const bob = await account(t.app, 'bob', 'Bob Builder')
    const { id } = await conversation(t.app, alice, [bob])
    await using alices = await person('alice')
    await logIn(alices, http, 'alice')
    await open(alices, http, id)

    await alices.page.getByRole('button', { name: 'Logout' }).click()
    await alices.page.getByRole('button', { name: 'Login' }).waitFor()
    expect(alices.page.url()).toBe(`${http}/`)
    expect(await alices.page.getByLabel('Username').isVisible()).toBe(true)
    expect(await alices.page.getByRole('button', { name: 'Logout' }).count()).toBe(0)
    expect((await alices.context.cookies()).filter((c) => c.value !== '')).toEqual([])

    const response = await alices.page.goto(`${http}/c/${id}`)
    expect(alices.page.url()).toBe(`${http}/`)
    expect(response?.status()).toBe(200)
    await alices.page.getByRole('button', { name: 'Login' }).waitFor()
    expect(await alices.page.locator('.message').count()).toBe(0)
    noProblems(alices)
  }, 30_000)

  test('a long conversation shows the newest 50 and loads older ones on request, in order', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app, 'alice', 'Alice Liddell')
    const bob = await account(t.app, 'bob', 'Bob Builder')
    const { id } = await conversation(t.app, alice, [bob])
    const all = Array.from({ length: 60 }, (_, i) => `message ${i + 1}`)
    for (const [i, text] of all.entries()) await send(t.app, i % 2 ? bob : alice, id, text)
    await using alices = await person('alice')
    await logIn(alices, http, 'alice')
    await open(alices, http, id)

    expect(await contents(alices.page)).toEqual(all.slice(10))
    await alices.page.getByRole('button', { name: 'Load older messages' }).click()
    await messageIn(alices.page, 'message 1').waitFor()
    await settled(alices)
    expect(await contents(alices.page)).toEqual(all)
    expect(await alices.page.getByRole('button', { name: 'Load older messages' }).count()).toBe(0)
    noProblems(alices)
  }, 60_000)

  // A slow network can deliver a page's scripts late. When they were deferred, htmx started itself
  // on a timer and could process the page before hx-ws.min.js or app.js had run, so the page never
  // went live. Each test below holds one script back, as a slow download would: until htmx has got
  // that far, or for at most 2 s (a page that waits for the script gets it then). With the scripts
  // at the end of <body>, not deferred, htmx waits for all of them and both tests pass.

  test('the live socket connects even when the WebSocket extension script arrives after htmx has started', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app, 'alice', 'Alice Liddell')
    const bob = await account(t.app, 'bob', 'Bob Builder')
    const { id } = await conversation(t.app, alice, [bob])
    await using alices = await person('alice')
    await alices.page.route('**/hx-ws.min.js', async (route) => {
      await alices.page.waitForFunction(() => (window as unknown as Probed).__probe.processed > 0, null, { timeout: 2_000 }).catch(() => {})
      await route.continue().catch(() => {})
    })
    await submitLogin(alices.page, http, 'alice')
    await alices.page.goto(`${http}/c/${id}`)
    await alices.page.getByLabel('Message', { exact: true }).waitFor()

    await live(alices.page, 5_000)
    await send(t.app, bob, id, 'can you hear me?')
    await messageIn(alices.page, 'can you hear me?').waitFor()
    noProblems(alices)
  }, 30_000)

  test('a message sent while the page loads is shown even when app.js arrives after the socket connected', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app, 'alice', 'Alice Liddell')
    const bob = await account(t.app, 'bob', 'Bob Builder')
    const { id } = await conversation(t.app, alice, [bob])
    await using alices = await person('alice')
    await submitLogin(alices.page, http, 'alice')
    await live(alices.page)

    let sentWhileLoading = false
    await alices.page.route('**/static/app.js', async (route) => {
      // The page's HTML is out, its socket not yet open: bob's message is in neither.
      if (!sentWhileLoading) {
        sentWhileLoading = (await send(t.app, bob, id, 'sent while your page loaded')).status === 201
      }
      await alices.page.waitForFunction(() => (window as unknown as Probed).__probe.connections > 0, null, { timeout: 2_000 }).catch(() => {})
      await route.continue().catch(() => {})
    })
    await alices.page.goto(`${http}/c/${id}`)
    await alices.page.getByLabel('Message', { exact: true }).waitFor()
    expect(sentWhileLoading).toBe(true)

    await live(alices.page, 5_000)
    await messageIn(alices.page, 'sent while your page loaded').waitFor({ timeout: 5_000 })
    noProblems(alices)
  }, 30_000)

  test('with access tokens of 10 s, the page keeps its one live socket past the token it connected with', async () => {
    await using t = await testApp({ ACCESS_TOKEN_TTL_SECONDS: '10' })
    const { http, ws } = listen(t.app)
    const alice = await account(t.app, 'alice', 'Alice Liddell')
    const bob = await account(t.app, 'bob', 'Bob Builder')
    const { id } = await conversation(t.app, alice, [bob])
    await using alices = await person('alice')
    await logIn(alices, http, 'alice')
    await open(alices, http, id)
    await markWindow(alices.page)

    // An API socket on the page's access token shows when that token has expired: it is closed then.
    const access = (await alices.context.cookies()).find((c) => c.name === ACCESS_COOKIE)!.value
    using witness = await TestSocket.open(`${ws}?token=${access}`)
    expect((await witness.closed).code).toBe(1008)

    const relogin = await call(t.app, 'POST', '/auth/login', { body: { username: 'bob', password: PASSWORD } })
    expect((await send(t.app, { ...bob, token: relogin.body.access_token }, id, 'after your token expired')).status).toBe(201)
    await messageIn(alices.page, 'after your token expired').waitFor()
    // Sending renews the page's cookies on the way.
    await sendFromUi(alices.page, 'and still here')
    expect((await alices.probe()).connections).toBe(1)
    expect(await windowKept(alices.page)).toBe(true)
    noProblems(alices)
  }, 40_000)

  test('a tab over the sockets-per-user limit is refused, and goes live by itself once another tab closes', async () => {
    const logs = captureLogs()
    await using t = await testApp({ WS_MAX_SOCKETS_PER_USER: '1' }, { logger: logs.logger })
    const { http } = listen(t.app)
    const alice = await account(t.app, 'alice', 'Alice Liddell')
    const bob = await account(t.app, 'bob', 'Bob Builder')
    const { id } = await conversation(t.app, alice, [bob])
    await using alices = await person('alice')
    await logIn(alices, http, 'alice')
    const secondTab = await alices.context.newPage()
    const secondTabProblems = watchPage(secondTab, 'alice, second tab')
    await secondTab.goto(`${http}/c/${id}`)
    await logs.waitFor((l) => l.msg === 'websocket refused' && l.user_id === alice.id)

    const connected = () => logs.lines.filter((l) => l.msg === 'websocket connected' && l.user_id === alice.id).length
    const connectedBefore = connected()
    await alices.page.close()
    await logs.waitFor(() => connected() > connectedBefore)
    await send(t.app, bob, id, 'for the tab that waited')
    await messageIn(secondTab, 'for the tab that waited').waitFor()
    expect(secondTabProblems.all()).toEqual([])
    noProblems(alices)
  }, 40_000)
})
