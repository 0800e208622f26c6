import { afterAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { ACCESS_COOKIE, REFRESH_COOKIE } from '../../src/auth/credentials'
import { TEST_SECRET } from '../support/app'
import { browser, closeBrowser, skipBrowserTests, watchPage } from '../support/browser'
import { uniqueName } from '../support/http'
import { startServer } from '../support/process'
import { SELF_SIGNED, skipProxyTests, startTlsProxy, type TlsProxy } from '../support/tls-proxy'
import { TestSocket } from '../support/ws'

const PASSWORD = 'correct horse battery'

/** A Pneumatic server process on a fresh database behind nginx terminating TLS; both stopped and removed on dispose. */
async function behindProxy(env: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'pneumatic-behind-proxy-'))
  const server = await startServer({ DATABASE_URL: `sqlite:${join(dir, 'chat.db')}`, JWT_SECRET: TEST_SECRET, ...env })
  let proxy: TlsProxy
  try {
    proxy = await startTlsProxy(server.base)
  } catch (error) {
    server.process.kill('SIGTERM')
    await server.process.exited
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
  return {
    proxy,
    async [Symbol.asyncDispose]() {
      try {
        await proxy[Symbol.asyncDispose]()
      } finally {
        server.process.kill('SIGTERM')
        await server.process.exited
        rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}

/** A form post over HTTPS through the proxy, as a page of `origin` sends it; `headers` may drop Sec-Fetch-Site ('' values). */
function post(origin: string, path: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  const sent = Object.fromEntries(Object.entries({ 'sec-fetch-site': 'same-origin', origin, ...headers }).filter(([, v]) => v !== ''))
  return fetch(origin + path, { method: 'POST', body: new URLSearchParams(form), headers: sent, redirect: 'manual', tls: SELF_SIGNED })
}

/** The session cookies a response sets, by name: each one's value and whether it is Secure. */
function sessionCookies(setCookie: string[]): Record<string, { value: string; secure: boolean }> {
  const cookies = Object.fromEntries(
    setCookie.map((line) => {
      const [pair] = line.split(';')
      const name = pair!.slice(0, pair!.indexOf('='))
      return [name, { value: pair!.slice(name.length + 1), secure: /;\s*Secure(;|$)/i.test(line) }]
    }),
  )
  expect(Object.keys(cookies).sort()).toEqual([ACCESS_COOKIE, REFRESH_COOKIE].sort())
  return cookies
}

const secureFlags = (setCookie: string[]) => Object.values(sessionCookies(setCookie)).map((c) => c.secure)

/** The head of the answer to a WebSocket upgrade sent over TLS to the proxy, as a browser on `origin` sends it. */
async function upgradeHead(proxy: TlsProxy, path: string, headers: Record<string, string>): Promise<string> {
  const socket = tlsConnect({ host: '127.0.0.1', port: proxy.port, servername: 'localhost', ...SELF_SIGNED })
  let received = ''
  const head = new Promise<string>((resolve, reject) => {
    socket.on('data', (data) => {
      received += String(data)
      if (received.includes('\r\n\r\n')) resolve(received.slice(0, received.indexOf('\r\n\r\n')))
    })
    socket.on('error', reject)
    socket.on('close', () => reject(new Error(`closed before a whole head: ${received}`)))
  })
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: localhost:${proxy.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
      Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('') +
      '\r\n',
  )
  try {
    return await head
  } finally {
    socket.destroy()
  }
}

const setCookieLines = (head: string) =>
  head
    .split('\r\n')
    .filter((line) => line.toLowerCase().startsWith('set-cookie:'))
    .map((line) => line.slice('set-cookie:'.length).trim())

describe.skipIf(skipProxyTests)('behind nginx terminating TLS', () => {
  test('with TRUST_PROXY=1, HTTPS sign-up, login, a wss upgrade renewing the session and logout all set Secure cookies', async () => {
    await using running = await behindProxy({ TRUST_PROXY: '1' })
    const origin = running.proxy.base
    const username = uniqueName()

    const signup = await post(origin, '/ui/signup', { username, password: PASSWORD })
    expect(signup.status).toBe(303)
    expect(secureFlags(signup.headers.getSetCookie())).toEqual([true, true])

    // An older browser sends Origin alone: https://localhost:<port> must be recognised as ours.
    const login = await post(origin, '/ui/login', { username, password: PASSWORD }, { 'sec-fetch-site': '' })
    expect(login.status).toBe(303)
    const session = sessionCookies(login.headers.getSetCookie())
    expect(Object.values(session).map((c) => c.secure)).toEqual([true, true])

    // The page's live socket with an expired access cookie: the upgrade renews the session.
    const upgrade = await upgradeHead(running.proxy, '/ws?format=html', { origin, cookie: `${REFRESH_COOKIE}=${session[REFRESH_COOKIE]!.value}` })
    expect(upgrade).toStartWith('HTTP/1.1 101')
    const renewed = sessionCookies(setCookieLines(upgrade))
    expect(Object.values(renewed).map((c) => c.secure)).toEqual([true, true])

    // And the renewed cookie opens a live socket through the proxy that gets its frames.
    const wss = `${origin.replace('https:', 'wss:')}/ws`
    using socket = await TestSocket.open(wss, { headers: { origin, cookie: `${ACCESS_COOKIE}=${renewed[ACCESS_COOKIE]!.value}` }, tls: SELF_SIGNED } as never)
    socket.send({ type: 'ping' })
    await socket.nextOfType('pong')

    const cookie = `${ACCESS_COOKIE}=${renewed[ACCESS_COOKIE]!.value}; ${REFRESH_COOKIE}=${renewed[REFRESH_COOKIE]!.value}`
    const logout = await post(origin, '/ui/logout', {}, { cookie })
    expect(logout.status).toBe(303)
    expect(secureFlags(logout.headers.getSetCookie())).toEqual([true, true])
  })

  test('without TRUST_PROXY, the same proxy gets cookies without Secure, and its forwarded host does not make its origin ours', async () => {
    await using running = await behindProxy({})
    const origin = running.proxy.base
    const username = uniqueName()

    const signup = await post(origin, '/ui/signup', { username, password: PASSWORD })
    expect(signup.status).toBe(303)
    expect(secureFlags(signup.headers.getSetCookie())).toEqual([false, false])
    const login = await post(origin, '/ui/login', { username, password: PASSWORD })
    expect(secureFlags(login.headers.getSetCookie())).toEqual([false, false])
    const refresh = sessionCookies(login.headers.getSetCookie())[REFRESH_COOKIE]!.value

    // The Host we see is the proxy's upstream address, and X-Forwarded-Host is not believed.
    expect((await post(origin, '/ui/login', { username, password: PASSWORD }, { 'sec-fetch-site': '' })).status).toBe(403)
    expect(await upgradeHead(running.proxy, '/ws?format=html', { origin, cookie: `${REFRESH_COOKIE}=${refresh}` })).toStartWith('HTTP/1.1 403')
  })
})

describe.skipIf(skipProxyTests || skipBrowserTests)('behind nginx terminating TLS, in Chromium', () => {
  afterAll(closeBrowser)

  test('signing up over HTTPS gives Secure cookies, and the live socket (wss, Origin https://…) connects through the proxy', async () => {
    await using running = await behindProxy({ TRUST_PROXY: '1' })
    const origin = running.proxy.base
    const context = await (await browser()).newContext({ ignoreHTTPSErrors: true })
    try {
      context.setDefaultTimeout(10_000)
      const page = await context.newPage()
      const problems = watchPage(page, 'chromium')
      await page.goto(`${origin}/?tab=signup`)
      await page.getByLabel('Username').fill(uniqueName())
      await page.getByLabel('Password').fill(PASSWORD)
      await page.getByRole('button', { name: 'Create Account' }).click()
      await page.getByRole('button', { name: 'Logout' }).waitFor()
      await page.locator('body[data-live="connected"]').waitFor({ state: 'attached' })
      const cookies = await context.cookies(origin)
      expect(cookies.filter((c) => c.name === ACCESS_COOKIE || c.name === REFRESH_COOKIE).map((c) => [c.name, c.secure]).sort()).toEqual(
        [[ACCESS_COOKIE, true], [REFRESH_COOKIE, true]].sort(),
      )
      expect(problems.all()).toEqual([])
    } finally {
      await context.close()
    }
  })
})
