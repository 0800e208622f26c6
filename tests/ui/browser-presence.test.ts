import { afterAll, afterEach, describe, expect, setSystemTime, test } from 'bun:test'
import { TYPING_INTERVAL_SECONDS } from '../../src/presence/service'
import { listen, testApp } from '../support/app'
import { closeBrowser, person, screenshot, skipBrowserTests } from '../support/browser'
import { account, conversation } from '../support/http'
import { logIn, messageIn, noProblems, open, reconnected } from '../support/ui'
import { TestSocket } from '../support/ws'

// Typing and presence in a real Chromium, two people each in a browser of their own.

afterAll(closeBrowser)
afterEach(() => setSystemTime())

describe.skipIf(skipBrowserTests)('typing and presence in the web UI', () => {
  test('Bob sees Alice’s green dot come and go, and “Alice is typing…” while she types, until her message arrives or 5 s pass', async () => {
    await using t = await testApp({ PRESENCE_GRACE_SECONDS: '1' })
    const { http } = listen(t.app)
    const aliceAccount = await account(t.app, 'alice', 'Alice <b>Liddell</b>')
    const bobAccount = await account(t.app, 'bob', 'Bob Builder')
    const direct = await conversation(t.app, aliceAccount, [bobAccount])
    await using alice = await person('alice')
    await using bob = await person('bob')
    // Time on the pages is theirs to move on (it flows as usual until moved).
    await bob.page.clock.install()
    await alice.page.clock.install()

    await logIn(bob, http, 'bob')
    await open(bob, http, direct.id)
    const dot = bob.page.locator(`.user-list .presence[data-user="${aliceAccount.id}"]`)
    expect(await dot.getAttribute('data-online')).toBe('false')

    // Alice signs in: her page's socket makes her online, and Bob's dot turns green without a reload.
    await logIn(alice, http, 'alice')
    await bob.page.locator(`.user-list .presence[data-user="${aliceAccount.id}"][data-online="true"]`).waitFor({ state: 'attached' })
    expect(await dot.evaluate((el) => getComputedStyle(el).backgroundColor)).toBe('rgb(30, 158, 90)')

    // She opens the conversation (a new page: her dot stays) and types.
    await open(alice, http, direct.id)
    const box = alice.page.getByLabel('Message', { exact: true })
    await box.pressSequentially('Hel')
    const line = bob.page.locator('#conversation .typing .typist')
    await line.waitFor()
    expect(await line.textContent()).toBe('Alice <b>Liddell</b> is typing…')
    expect(await line.getAttribute('data-user')).toBe(aliceAccount.id)
    await screenshot(bob.page, 'presence-typing')

    // Her message ends the line.
    await box.pressSequentially('lo Bob')
    await box.press('Enter')
    await messageIn(bob.page, 'Hello Bob').waitFor()
    expect(await line.count()).toBe(0)

    // She types again, later (her page says so every 3 s at most, the server passes one every 2 s):
    // the line is back, and goes by itself 5 s on.
    await alice.page.clock.fastForward(3000)
    setSystemTime(Date.now() + TYPING_INTERVAL_SECONDS * 1000)
    await alice.page.getByLabel('Message', { exact: true }).pressSequentially('And')
    await line.waitFor()
    await bob.page.clock.fastForward(4000)
    expect(await line.count()).toBe(1)
    await bob.page.clock.fastForward(1000)
    await line.waitFor({ state: 'detached' })
    setSystemTime()

    // Alice leaves: once the grace is over, her dot goes grey on Bob's page.
    await alice.page.goto('about:blank')
    await bob.page.locator(`.user-list .presence[data-user="${aliceAccount.id}"][data-online="false"]`).waitFor({ state: 'attached', timeout: 15_000 })
    expect(await dot.getAttribute('title')).toBe('Offline')
    noProblems(alice, bob)
  }, 60_000)

  test('after a dropped connection the dots are read again: who left while the page was away shows grey', async () => {
    await using t = await testApp({ PRESENCE_GRACE_SECONDS: '1' })
    const { http, ws } = listen(t.app)
    const aliceAccount = await account(t.app, 'alice', 'Alice Liddell')
    const bobAccount = await account(t.app, 'bob', 'Bob Builder')
    await conversation(t.app, aliceAccount, [bobAccount])
    // Alice is an API client: online while her socket is open.
    const aliceSocket = await TestSocket.open(`${ws}?token=${aliceAccount.token}`)
    await using bob = await person('bob')
    await logIn(bob, http, 'bob')
    const dot = (online: boolean) => bob.page.locator(`.user-list .presence[data-user="${aliceAccount.id}"][data-online="${online}"]`)
    expect(await dot(true).count()).toBe(1)

    // The server restarts: Alice's socket goes with it and she does not come back, so no one is told she left.
    await using _t2 = await t.restart()
    await aliceSocket.closed
    await reconnected(bob)
    await dot(false).waitFor({ state: 'attached' })
    noProblems(bob)
  }, 60_000)
})
