import { afterAll, describe, expect, test } from 'bun:test'
import type { Page } from 'playwright-core'
import { listen, testApp, type TestApp } from '../support/app'
import { closeBrowser, person, skipBrowserTests } from '../support/browser'
import { account, call, conversation, type Account } from '../support/http'
import { logIn, markWindow, noProblems, open, sendFromUi, windowKept } from '../support/ui'

// The search box in a real Chromium: typing shows the matches highlighted, and a result opens its
// message in its conversation, scrolled to and highlighted, loading older pages when it is not in
// the first.

afterAll(closeBrowser)

async function said(t: TestApp, who: Account, conversationId: string, text: string): Promise<string> {
  const reply = await call(t.app, 'POST', '/messages', { token: who.token, body: { message_id: crypto.randomUUID(), conversation_id: conversationId, content: text } })
  if (reply.status !== 201) throw new Error(`send failed: ${reply.status} ${JSON.stringify(reply.body)}`)
  return reply.body.id
}

/** Types a query into the search box and waits for the results of exactly it. */
async function searchFor(page: Page, q: string): Promise<void> {
  const box = page.getByRole('searchbox', { name: 'Search messages' })
  await box.fill(q)
  await page.locator('#search-results .search-result, #search-results .search-empty').first().waitFor()
}

/** Whether the element is within the message list's visible area. */
const inView = (page: Page, id: string) =>
  page.evaluate((messageId) => {
    const el = document.getElementById(`msg-${messageId}`)
    const scroller = document.getElementById('message-scroll')
    if (!el || !scroller) return false
    const box = el.getBoundingClientRect()
    const view = scroller.getBoundingClientRect()
    return box.bottom > view.top && box.top < view.bottom
  }, id)

describe.skipIf(skipBrowserTests)('search in Chromium', () => {
  test('one types a word and sees the highlighted match another just sent; clicking it opens the conversation at that message, loading older pages to reach it', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app, 'alice', 'Alice Liddell')
    const bob = await account(t.app, 'bob', 'Bob Builder')
    const carol = await account(t.app, 'carol')
    const team = await conversation(t.app, alice, [bob], 'Launch')
    const direct = await conversation(t.app, alice, [carol])
    await said(t, carol, direct.id, 'hello alice')
    // The message to find, then more than a page of others after it: it is not on the first page.
    const deployment = await said(t, bob, team.id, 'We start the deployment on Friday <b>early</b>')
    for (let i = 0; i < 60; i++) await said(t, i % 2 ? alice : bob, team.id, `chatter ${i}`)

    await using alices = await person('alice')
    await using bobs = await person('bob')
    await logIn(alices, http, 'alice')
    await open(alices, http, direct.id)
    await logIn(bobs, http, 'bob')
    await open(bobs, http, team.id)
    // Bob says something new while Alice is elsewhere: her search finds it at once.
    await sendFromUi(bobs.page, 'the deploy checklist is ready')

    await searchFor(alices.page, 'deplo')
    const results = alices.page.locator('#search-results .search-result')
    expect(await results.count()).toBe(2)
    expect(await results.nth(0).locator('.snippet').innerHTML()).toBe('the <mark>deploy</mark> checklist is ready')
    expect(await results.nth(1).locator('.snippet').innerHTML()).toBe('We start the <mark>deployment</mark> on Friday &lt;b&gt;early&lt;/b&gt;')
    expect(await results.nth(1).locator('.search-conversation').textContent()).toContain('Launch')
    expect(await results.nth(1).locator('mark').evaluate((el) => getComputedStyle(el).backgroundColor)).not.toBe('rgba(0, 0, 0, 0)')

    await results.nth(1).locator('a').click()
    await alices.page.waitForURL(`${http}/c/${team.id}#msg-${deployment}`)
    const target = alices.page.locator(`li.message[id="msg-${deployment}"]`)
    await target.waitFor()
    await alices.page.waitForFunction((id) => document.activeElement?.id === `msg-${id}`, deployment)
    expect(await target.locator('p.content').textContent()).toBe('We start the deployment on Friday <b>early</b>')
    expect(await inView(alices.page, deployment)).toBe(true)
    expect(await target.evaluate((el) => el.classList.contains('highlight') || el.getAnimations().length > 0)).toBe(true)

    // In the conversation already open, a result is shown where it is: no page load.
    await markWindow(alices.page)
    await alices.page.locator('#message-scroll').evaluate((el) => (el.scrollTop = el.scrollHeight))
    expect(await inView(alices.page, deployment)).toBe(false)
    await searchFor(alices.page, 'friday early')
    await alices.page.locator('#search-results .search-result a').click()
    await alices.page.waitForFunction((id) => document.activeElement?.id === `msg-${id}`, deployment)
    expect(await inView(alices.page, deployment)).toBe(true)
    expect(await windowKept(alices.page)).toBe(true)
    expect(alices.page.url()).toBe(`${http}/c/${team.id}#msg-${deployment}`)

    // Carol, in no conversation with it, finds nothing.
    await using carols = await person('carol')
    await logIn(carols, http, 'carol')
    await searchFor(carols.page, 'deplo')
    expect(await carols.page.locator('#search-results .search-empty').textContent()).toBe('No messages found for “deplo”')
    noProblems(alices, bobs, carols)
  })
})
