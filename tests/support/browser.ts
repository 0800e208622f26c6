import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page, type ViewportSize } from 'playwright-core'

/**
 * Real-browser tests run Debian's Chromium through playwright-core; no browser is ever downloaded.
 * CHROMIUM_PATH overrides the path (to check the skip and CI behaviour without uninstalling it).
 */
const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium'

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

const INSTALL_HINT = 'install it with `apt-get install -y chromium` (Debian/Ubuntu)'

const chromiumMissing = !existsSync(CHROMIUM_PATH)

/**
 * True when the browser tests should be skipped: Chromium is missing and this is not CI. On CI
 * (CI=true) a missing Chromium is a failure, never a silent skip.
 */
export const skipBrowserTests = chromiumMissing && process.env.CI !== 'true'

if (skipBrowserTests) {
  console.warn(`[browser tests] SKIPPED: Chromium not found at ${CHROMIUM_PATH}; ${INSTALL_HINT}. With CI=true these tests fail instead.`)
}

let shared: Promise<Browser> | null = null

/**
 * One headless Chromium per test file, launched on first use with a fresh temporary profile, and
 * again if it went away (bun test kills a timed-out test's child processes, Chromium included).
 */
export async function browser(): Promise<Browser> {
  if (chromiumMissing) {
    throw new Error(`Chromium not found at ${CHROMIUM_PATH} and CI=true, so the browser tests fail rather than skip: ${INSTALL_HINT}`)
  }
  const launched = shared && (await shared.catch(() => null))
  if (launched?.isConnected()) return launched
  shared = chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true })
  return shared
}

/** Closes the shared browser, if one was launched (for afterAll). */
export async function closeBrowser(): Promise<void> {
  const launched = shared
  shared = null
  if (launched) await (await launched.catch(() => null))?.close()
}

/** What went wrong on a page, as the browser saw it: console errors, uncaught errors and dialogs. */
export type Problems = { console: string[]; page: string[]; dialogs: string[]; all(): string[] }

/**
 * Records console errors, uncaught page errors and any dialog (alert, confirm, prompt) on a page.
 * Dialogs are dismissed so the page never hangs on one. A CSP violation is a console error.
 */
export function watchPage(page: Page, label = 'page'): Problems {
  const problems: Problems = {
    console: [],
    page: [],
    dialogs: [],
    all: () => [...problems.console, ...problems.page, ...problems.dialogs],
  }
  page.on('console', (message) => {
    if (message.type() === 'error') problems.console.push(`${label} console.error: ${message.text()} (${message.location().url})`)
  })
  page.on('pageerror', (error) => problems.page.push(`${label} pageerror: ${error.message}`))
  page.on('dialog', (dialog) => {
    problems.dialogs.push(`${label} dialog ${dialog.type()}: ${dialog.message()}`)
    void dialog.dismiss().catch(() => {})
  })
  return problems
}

/**
 * A passive probe in every page of a context, installed before the page's own scripts: counts of
 * htmx processing passes, htmx requests started and finished, live (WebSocket) connections and
 * pushes received. Tests wait on these instead of sleeping. Init scripts are not subject to the
 * page's CSP and add nothing to it.
 */
const PROBE = `(() => {
  const p = (window.__probe = { processed: 0, started: 0, finished: 0, connections: 0, pushes: 0 })
  document.addEventListener('htmx:before:process', () => p.processed++, true)
  document.addEventListener('htmx:before:request', () => p.started++, true)
  document.addEventListener('htmx:finally:request', () => p.finished++, true)
  document.addEventListener('htmx:ws:after:connection', () => p.connections++, true)
  document.addEventListener('htmx:ws:after:message:incoming', () => p.pushes++, true)
})()`

export type Probe = { processed: number; started: number; finished: number; connections: number; pushes: number }

/** One person's browser: a context of their own (cookies, storage), its first page, and what went wrong. */
export type Person = {
  context: BrowserContext
  page: Page
  problems: Problems
  /** The probe's counters on this person's page. */
  probe(): Promise<Probe>
  [Symbol.asyncDispose](): Promise<void>
}

/** A new context and page for one user; dispose it (`await using`) to close the context. */
export async function person(label: string, viewport: ViewportSize = { width: 1440, height: 900 }, options: Omit<BrowserContextOptions, 'viewport'> = {}): Promise<Person> {
  const context = await (await browser()).newContext({ ...options, viewport })
  context.setDefaultTimeout(10_000)
  await context.addInitScript(PROBE)
  const page = await context.newPage()
  const problems = watchPage(page, label)
  return {
    context,
    page,
    problems,
    probe: () => page.evaluate(() => (window as unknown as { __probe: Probe }).__probe),
    [Symbol.asyncDispose]: () => context.close(),
  }
}

const ARTIFACTS = join(import.meta.dir, '..', 'artifacts')

/**
 * Saves a screenshot to tests/artifacts/<name>.png and returns its path. The caret is left as it
 * is: hiding it, Playwright sets a style attribute on every field and leaves them with an empty
 * one, which htmx then copies when it swaps a field in, and the page's CSP refuses.
 */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true })
  const path = join(ARTIFACTS, `${name}.png`)
  await page.screenshot({ path, caret: 'initial' })
  return path
}
