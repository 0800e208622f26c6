import { afterAll, describe, expect, test } from 'bun:test'
import type { BrowserContext, Route } from 'playwright-core'
import { ACCESS_COOKIE, REFRESH_COOKIE } from '../../src/auth/credentials'
import { listen, testApp, type TestApp } from '../support/app'
import { closeBrowser, person, skipBrowserTests } from '../support/browser'
import { FormClient } from '../support/form-client'
import { account, call, uniqueName } from '../support/http'
import { TestSocket } from '../support/ws'

// The web UI's session: cookies, renewed from the refresh cookie when the access cookie is gone.

const sessionRows = async (t: TestApp) => (await t.sql<{ revoked_at: number | null }>('SELECT revoked_at FROM sessions'))

/** A second tab of the same browser: the same cookies, sent by a client of its own. */
function sameBrowser(t: TestApp, tab: FormClient): FormClient {
  const other = new FormClient(t.app)
  for (const [name, value] of tab.cookies) other.cookies.set(name, value)
  return other
}

describe('two tabs renewing the session at once', () => {
  test('both pages load signed in with the same new cookies, and the session stays open', async () => {
    await using t = await testApp()
    const first = new FormClient(t.app)
    await first.signUp(uniqueName(), 'Alice')
    first.cookies.delete(ACCESS_COOKIE) // expired: the browser dropped it
    const second = sameBrowser(t, first)
    const pages = await Promise.all([first.get('/'), second.get('/')])
    for (const page of pages) expect(page.body).toContain('<span class="me">Alice</span>')
    expect(second.cookies).toEqual(first.cookies)
    expect(second.cookies.get(ACCESS_COOKIE)).toBeDefined()
    expect(await sessionRows(t)).toEqual([{ revoked_at: null }])
  })

  test("a page load and its socket's upgrade: the upgrade with the refresh cookie just replaced is let in, and the session stays open", async () => {
    await using t = await testApp()
    const { http, ws } = listen(t.app)
    const alice = await account(t.app)
    const tab = new FormClient(t.app, http)
    tab.cookies.set(REFRESH_COOKIE, alice.refresh)
    expect((await tab.get('/')).body).toContain('Logout')
    const renewed = tab.cookies.get(REFRESH_COOKIE)!
    expect(renewed).not.toBe(alice.refresh)
    // The other tab's socket left before the page's new cookies came back: only the old refresh cookie.
    using socket = await TestSocket.open(`${ws}?format=html`, { headers: { origin: http, cookie: `${REFRESH_COOKIE}=${alice.refresh}` } })
    expect(socket.received[0]).toEqual({ type: 'ready', user_id: alice.id })
    expect((await sessionRows(t)).map((r) => r.revoked_at)).toEqual([null])
    expect((await call(t.app, 'GET', '/auth/me', { token: tab.cookies.get(ACCESS_COOKIE) })).status).toBe(200)
    expect((await call(t.app, 'POST', '/auth/refresh', { body: { refresh_token: renewed } })).status).toBe(200)
  })
})

afterAll(closeBrowser)

describe.skipIf(skipBrowserTests)('two tabs in Chromium', () => {
  /**
   * Holds the next `count` requests for `url` until all of them have left their tabs, then lets
   * them go together, so each carries the cookies its tab had before any answer came back.
   * `cookies` is the Cookie header each was sent with.
   */
  async function sentTogether(context: BrowserContext, url: string, count: number): Promise<{ cookies: Promise<string[]> }> {
    const held: Route[] = []
    const { promise, resolve } = Promise.withResolvers<string[]>()
    await context.route(
      url,
      async (route) => {
        held.push(route)
        if (held.length < count) return
        const cookies = await Promise.all(held.map(async (r) => (await r.request().headerValue('cookie')) ?? ''))
        await Promise.all(held.map((r) => r.continue()))
        resolve(cookies)
      },
      { times: count },
    )
    return { cookies: promise }
  }

  test('both reload at once with only the refresh cookie: both end up signed in and live, and the session stays open', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const signup = await call(t.app, 'POST', '/auth/signup', { body: { username: 'alice', password: 'correct horse battery', full_name: 'Alice Liddell' } })
    expect(signup.status).toBe(201)
    await using browser = await person('alice')
    const tabs = [browser.page, await browser.context.newPage()]
    await tabs[0]!.goto(`${http}/`)
    await tabs[0]!.getByLabel('Username').fill('alice')
    await tabs[0]!.getByLabel('Password').fill('correct horse battery')
    await tabs[0]!.getByRole('button', { name: 'Login' }).click()
    await tabs[0]!.getByRole('button', { name: 'Logout' }).waitFor()
    await tabs[1]!.goto(`${http}/`)
    await tabs[1]!.getByRole('button', { name: 'Logout' }).waitFor()

    await browser.context.clearCookies({ name: ACCESS_COOKIE })
    const reloads = await sentTogether(browser.context, `${http}/`, 2)
    await Promise.all(tabs.map((tab) => tab.reload()))
    const sent = await reloads.cookies
    for (const cookie of sent) {
      expect(cookie).toContain(`${REFRESH_COOKIE}=`)
      expect(cookie).not.toContain(`${ACCESS_COOKIE}=`)
    }
    expect(sent[1]).toBe(sent[0]!)

    for (const tab of tabs) {
      await tab.getByRole('button', { name: 'Logout' }).waitFor()
      await tab.locator('body[data-live="connected"]').waitFor({ state: 'attached' })
    }
    expect(await sessionRows(t)).toEqual([{ revoked_at: null }])
    expect(browser.problems.all()).toEqual([])
  }, 30_000)
})
