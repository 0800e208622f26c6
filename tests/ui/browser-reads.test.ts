import { afterAll, describe, expect, test } from 'bun:test'
import type { Page } from 'playwright-core'
import { listen, testApp } from '../support/app'
import { closeBrowser, person, screenshot, skipBrowserTests, watchPage, type Person } from '../support/browser'
import { account, call, conversation } from '../support/http'
import { live, logIn, messageIn, noProblems, open, sendFromUi, unreadBecomes, unreadShown } from '../support/ui'

// Unread counts and "Seen by" in a real Chromium (issue 18): two people with two tabs each. A
// count is the server's, on every tab; reading on one tab clears it on all of them, and the other
// person sees the receipt under the newest message.

afterAll(closeBrowser)

/** A second tab of the same browser (the same session), watched for problems like the first. */
async function secondTab(p: Person, label: string): Promise<{ page: Page; problems: () => string[] }> {
  const page = await p.context.newPage()
  const problems = watchPage(page, label)
  return { page, problems: () => problems.all() }
}

const seenBy = (page: Page, conversationId: string) => page.locator(`[id="seen-${conversationId}"]`)

describe.skipIf(skipBrowserTests)('unread counts and "Seen by" in Chromium', () => {
  test('a count shows on every tab, clears on all of them when one tab reads, and the sender sees who has seen it', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app, 'alice', 'Alice Liddell')
    const bob = await account(t.app, 'bob', 'Bob Builder')
    const carol = await account(t.app, 'carol', 'Carol Danvers')
    const group = await conversation(t.app, bob, [alice, carol], 'Launch Team')
    await using alices = await person('alice')
    await using bobs = await person('bob')
    await logIn(alices, http, 'alice')
    await logIn(bobs, http, 'bob')
    const aliceOther = await secondTab(alices, 'alice tab 2')
    const bobOther = await secondTab(bobs, 'bob tab 2')
    await aliceOther.page.goto(`${http}/`)
    await live(aliceOther.page)
    await bobOther.page.goto(`${http}/`)
    await live(bobOther.page)
    await open(bobs, http, group.id)

    // Bob writes three messages: on both of Alice's tabs the group shows 3; on Bob's, nothing.
    for (const text of ['Kick-off at 10', 'Bring the slides', 'And coffee']) await sendFromUi(bobs.page, text)
    await unreadBecomes(alices.page, group.id, '3')
    await unreadBecomes(aliceOther.page, group.id, '3')
    await screenshot(aliceOther.page, 'reads-unread-count')
    expect(await unreadShown(bobOther.page, group.id)).toBe('')
    expect(await alices.page.locator(`[id="conv-${group.id}"] .unread`).getAttribute('aria-label')).toBe('3 unread')
    expect(await seenBy(bobs.page, group.id).textContent()).toBe('')

    // Alice opens it on one tab: read there, cleared on the other, and Bob's page says she saw it.
    await open(alices, http, group.id)
    await unreadBecomes(aliceOther.page, group.id, '')
    await seenBy(bobs.page, group.id).filter({ hasText: 'Seen by Alice Liddell' }).waitFor()
    await seenBy(bobOther.page, group.id).waitFor({ state: 'detached' }) // no conversation open there: nothing to say it under
    // Her own read is no receipt to her; Bob's page read his own messages as it showed them.
    expect(await seenBy(alices.page, group.id).textContent()).toBe('Seen by Bob Builder')
    await screenshot(bobs.page, 'reads-seen-by')

    // Carol reads through the API: both names now.
    expect((await call(t.app, 'POST', `/conversations/${group.id}/read`, { token: carol.token, body: { seq: 3 } })).status).toBe(204)
    await seenBy(bobs.page, group.id).filter({ hasText: 'Seen by Alice Liddell, Carol Danvers' }).waitFor()

    // A new message starts "Seen by" again; Alice's open tab reads it at once, her other tab never counts it for long.
    await sendFromUi(bobs.page, 'Room 4B')
    await messageIn(alices.page, 'Room 4B').waitFor()
    await seenBy(bobs.page, group.id).filter({ hasText: /^Seen by Alice Liddell$/ }).waitFor()
    await unreadBecomes(aliceOther.page, group.id, '')
    await screenshot(aliceOther.page, 'reads-other-tab')

    // What a tab shows is the server's count: a reload of either tab says the same.
    await aliceOther.page.reload()
    await live(aliceOther.page)
    expect(await unreadShown(aliceOther.page, group.id)).toBe('')
    const listed = await call(t.app, 'GET', '/conversations', { token: alice.token })
    expect(listed.body.conversations.find((c: { id: string }) => c.id === group.id)).toMatchObject({ last_read_seq: 4, unread_count: 0 })
    noProblems(alices, bobs)
    expect([...aliceOther.problems(), ...bobOther.problems()]).toEqual([])
  }, 60_000)

  test('a tab that is hidden does not read: the count stays until the reader looks', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app, 'alice', 'Alice Liddell')
    const bob = await account(t.app, 'bob', 'Bob Builder')
    const direct = await conversation(t.app, bob, [alice])
    await using alices = await person('alice')
    await logIn(alices, http, 'alice')
    const other = await secondTab(alices, 'alice tab 2')
    await other.page.goto(`${http}/`)
    await live(other.page)
    await open(alices, http, direct.id)
    // The open tab goes to the background (as a switched-away tab is): Chromium says so to the page.
    await alices.page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true })
      document.dispatchEvent(new Event('visibilitychange'))
    })
    expect((await call(t.app, 'POST', '/messages', { token: bob.token, body: { message_id: crypto.randomUUID(), conversation_id: direct.id, content: 'Are you there?' } })).status).toBe(201)
    await messageIn(alices.page, 'Are you there?').waitFor()
    await unreadBecomes(other.page, direct.id, '1')
    // Back to the tab: it reads, and the other tab clears.
    await alices.page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true })
      document.dispatchEvent(new Event('visibilitychange'))
    })
    await unreadBecomes(other.page, direct.id, '')
    const [row] = await t.sql<{ seq: number }>('SELECT last_read_seq AS seq FROM conversation_members WHERE conversation_id = ? AND user_id = ?', direct.id, alice.id)
    expect(Number(row!.seq)).toBe(1)
    noProblems(alices)
    expect(other.problems()).toEqual([])
  }, 60_000)
})
