import { expect } from 'bun:test'
import type { Page } from 'playwright-core'
import type { TestApp } from './app'
import type { Person, Probe } from './browser'

/**
 * Driving the web UI in Chromium as a person would, for the browser tests: sign up or in, open a
 * conversation, send, and wait on what the page shows or its probe counts (never on time).
 */

export const PASSWORD = 'correct horse battery' // the password account() signs up with

export type Probed = { __probe: Probe }

/** Waits until the page's live socket has connected (public/app.js marks <body data-live>). */
export async function live(page: Page, timeout?: number): Promise<void> {
  try {
    await page.locator('body[data-live="connected"]').waitFor({ state: 'attached', timeout })
  } catch (error) {
    const probe = await page.evaluate(() => (window as unknown as Probed).__probe).catch(() => null)
    const why =
      probe?.connections === 0
        ? 'the live socket never connected: htmx processed the page before its ws extension was loaded (see the slow-script tests)'
        : 'the socket connected but public/app.js did not see it: it ran after the first connection (see the slow-script tests)'
    throw new Error(`${page.url()}: no body[data-live="connected"]; ${why}. Probe: ${JSON.stringify(probe)}`, { cause: error })
  }
}

export async function signUp(p: Person, http: string, username: string, fullName?: string): Promise<void> {
  const { page } = p
  await page.goto(`${http}/`)
  await page.getByRole('link', { name: 'Sign Up' }).click()
  await page.getByRole('button', { name: 'Create Account' }).waitFor()
  await page.getByLabel('Username').fill(username)
  await page.getByLabel('Password').fill(PASSWORD)
  if (fullName !== undefined) await page.getByLabel('Full Name').fill(fullName)
  await page.getByRole('button', { name: 'Create Account' }).click()
  await page.getByRole('button', { name: 'Logout' }).waitFor()
  await live(page)
}

/** Submits the Login form, and waits for nothing after: the caller decides what to wait for. */
export async function submitLogin(page: Page, http: string, username: string): Promise<void> {
  await page.goto(`${http}/`)
  await page.getByLabel('Username').fill(username)
  await page.getByLabel('Password').fill(PASSWORD)
  await page.getByRole('button', { name: 'Login' }).click()
}

export async function logIn(p: Person, http: string, username: string): Promise<void> {
  await submitLogin(p.page, http, username)
  await p.page.getByRole('button', { name: 'Logout' }).waitFor()
  await live(p.page)
}

/** Opens /c/<id> and waits for its live socket. */
export async function open(p: Person, http: string, conversationId: string): Promise<void> {
  await p.page.goto(`${http}/c/${conversationId}`)
  await p.page.getByLabel('Message', { exact: true }).waitFor()
  await live(p.page)
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** The shown messages whose content is exactly `text` (one line). */
export const messageIn = (page: Page, text: string) =>
  page.locator('ol.message-list > li.message').filter({ has: page.locator('p.content', { hasText: new RegExp(`^${escapeRegExp(text)}$`) }) })

/** Every shown message's content, raw (newlines kept), in page order. */
export const contents = (page: Page) => page.locator('ol.message-list > li.message > p.content').allTextContents()

/** The hidden message_id of the composer now on the page. */
export const composerId = (page: Page) => page.locator('#composer input[name="message_id"]').getAttribute('value')

/** Waits until the composer has been replaced by a fresh one (new message_id): the send is done. */
export const freshComposer = (page: Page, previousId: string | null) =>
  page.locator(`#composer input[name="message_id"]:not([value="${previousId}"])`).waitFor({ state: 'attached' })

/** Types a one-line message, presses Enter, and waits until it is shown and the composer is fresh. */
export async function sendFromUi(page: Page, text: string): Promise<void> {
  const before = await composerId(page)
  const box = page.getByLabel('Message', { exact: true })
  await box.fill(text)
  await box.press('Enter')
  await freshComposer(page, before)
  await messageIn(page, text).first().waitFor()
}

/** A row of the Conversations list, by conversation id (as an attribute: a CSS #id cannot start with a digit, and a UUID can). */
export const row = (page: Page, conversationId: string) => page.locator(`#conversation-list > li.conversation[id="conv-${conversationId}"]`)

/** The unread count a conversation's row shows: '' when it shows none (none unread, or it is the open one). */
export async function unreadShown(page: Page, conversationId: string): Promise<string> {
  const badge = row(page, conversationId).locator('.unread')
  return (await badge.isVisible()) ? ((await badge.textContent()) ?? '') : ''
}

/** Waits until a conversation's row shows this unread count ('' for none). */
export const unreadBecomes = (page: Page, conversationId: string, count: string) =>
  page.waitForFunction(
    ([id, want]) => {
      const badge = document.querySelector(`#conversation-list > li.conversation[id="conv-${id}"] .unread`) as HTMLElement | null
      const shown = badge && badge.offsetParent !== null ? (badge.textContent ?? '') : ''
      return shown === want
    },
    [conversationId, count] as const,
  )

export const conversationIdFromUrl = (page: Page): string => {
  const match = new URL(page.url()).pathname.match(/^\/c\/([^/]+)$/)
  if (!match) throw new Error(`not on a conversation page: ${page.url()}`)
  return match[1]!
}

/** Marks the page's window so a later check can tell it was never reloaded or navigated. */
export const markWindow = (page: Page) => page.evaluate(() => ((window as unknown as { __stay: boolean }).__stay = true))
export const windowKept = (page: Page) => page.evaluate(() => (window as unknown as { __stay?: boolean }).__stay === true)

/** Waits until every htmx request the page started has finished (swaps included). */
export const settled = (p: Person) =>
  p.page.waitForFunction(() => {
    const probe = (window as unknown as Probed).__probe
    return probe.started === probe.finished
  })

/** Waits until the page's live socket has connected a second time (after a drop). */
export const reconnected = (p: Person) => p.page.waitForFunction(() => (window as unknown as Probed).__probe.connections >= 2, null, { timeout: 15_000 })

export const messageCount = async (t: TestApp) =>
  (await t.sql<{ n: number }>('SELECT count(*) AS n FROM messages'))[0]!.n

export const noProblems = (...people: Person[]) => expect(people.flatMap((p) => p.problems.all())).toEqual([])

