import { describe, expect, test } from 'bun:test'
import { ACCESS_COOKIE, REFRESH_COOKIE } from '../../src/auth/credentials'
import { testApp } from '../support/app'
import { FormClient, type PageReply } from '../support/form-client'
import { uniqueName } from '../support/http'

const PASSWORD = 'correct horse battery'

/** The Set-Cookie lines of a reply for both session cookies, by name. */
function sessionCookies(reply: PageReply): Record<string, string> {
  const lines = reply.headers.getSetCookie()
  const byName = Object.fromEntries(lines.map((line) => [line.split('=')[0]!, line]))
  expect(Object.keys(byName).sort()).toEqual([ACCESS_COOKIE, REFRESH_COOKIE].sort())
  return byName
}

const secureFlags = (reply: PageReply) => Object.values(sessionCookies(reply)).map((line) => /;\s*Secure/i.test(line))

/**
 * A browser's whole session as a TLS-terminating proxy passes it on (plain http://chat.example
 * plus `forwarded` headers): sign-up, login, a silent renewal, logout. Returns each step's reply.
 */
async function sessionThroughProxy(env: Record<string, string>, forwarded: Record<string, string>) {
  await using t = await testApp(env)
  const client = new FormClient(t.app, 'http://chat.example')
  const username = uniqueName()
  const send = (method: string, path: string, form?: Record<string, string>) => client.request(method, path, { form, headers: forwarded })
  const signup = await send('POST', '/ui/signup', { username, password: PASSWORD })
  const login = await send('POST', '/ui/login', { username, password: PASSWORD })
  client.cookies.delete(ACCESS_COOKIE)
  const renewal = await send('GET', '/')
  const logout = await send('POST', '/ui/logout', {})
  expect([signup.status, login.status, renewal.status, logout.status]).toEqual([303, 303, 200, 303])
  return { signup, login, renewal, logout }
}

describe('Secure cookies behind a TLS-terminating proxy', () => {
  test("with TRUST_PROXY, the proxy's X-Forwarded-Proto: https makes both cookies Secure on sign-up, login, silent renewal and logout", async () => {
    const steps = await sessionThroughProxy({ TRUST_PROXY: '1' }, { 'x-forwarded-proto': 'https' })
    for (const reply of Object.values(steps)) expect(secureFlags(reply)).toEqual([true, true])
  })

  test("without TRUST_PROXY, a client's own X-Forwarded-Proto: https is not believed: no cookie is Secure", async () => {
    const steps = await sessionThroughProxy({}, { 'x-forwarded-proto': 'https' })
    for (const reply of Object.values(steps)) expect(secureFlags(reply)).toEqual([false, false])
  })

  test('with TRUST_PROXY but no X-Forwarded-Proto, the request itself decides: plain http, not Secure', async () => {
    const steps = await sessionThroughProxy({ TRUST_PROXY: '1' }, {})
    for (const reply of Object.values(steps)) expect(secureFlags(reply)).toEqual([false, false])
  })

  // Of a list, the entry the farthest trusted proxy wrote counts (the Nth from the right), as in
  // X-Forwarded-For: entries left of it are the client's own, entries right of it our proxies' hops.
  test.each([
    ['1', 'https', true],
    ['1', 'HTTPS', true],
    ['1', 'http', false],
    ['1', 'https, http', false],
    ['1', 'http, https', true],
    ['2', 'https, http', true],
    ['2', 'https, http, http', false],
    ['2', 'http, https, http', true],
    ['2', 'https', true],
    ['1', 'wss', false],
    ['1', ' , ', false],
  ])('TRUST_PROXY=%s and X-Forwarded-Proto "%s": Secure is %p', async (hops, proto, secure) => {
    await using t = await testApp({ TRUST_PROXY: hops })
    const reply = await new FormClient(t.app, 'http://chat.example').request('POST', '/ui/signup', {
      form: { username: uniqueName(), password: PASSWORD },
      headers: { 'x-forwarded-proto': proto },
    })
    expect(secureFlags(reply)).toEqual([secure, secure])
  })
})

describe('same-origin checks behind a TLS-terminating proxy', () => {
  /** A sign-up form post as an older browser sends it (Origin, no Sec-Fetch-Site), through `url`. */
  async function signUpFrom(env: Record<string, string>, url: string, headers: Record<string, string>): Promise<number> {
    await using t = await testApp(env)
    const reply = await new FormClient(t.app, url).request('POST', '/ui/signup', {
      form: { username: uniqueName(), password: PASSWORD },
      headers: { 'sec-fetch-site': '', ...headers },
    })
    return reply.status
  }

  test('with TRUST_PROXY, a post from the https page the proxy serves is ours; from the same host over http it is not', async () => {
    const proxied = { 'x-forwarded-proto': 'https' }
    expect(await signUpFrom({ TRUST_PROXY: '1' }, 'http://chat.example', { ...proxied, origin: 'https://chat.example' })).toBe(303)
    expect(await signUpFrom({ TRUST_PROXY: '1' }, 'http://chat.example', { ...proxied, origin: 'http://chat.example' })).toBe(403)
  })

  test("with TRUST_PROXY, the proxy's X-Forwarded-Host names our host when it passes its upstream's address as Host", async () => {
    const proxied = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'chat.example', origin: 'https://chat.example' }
    expect(await signUpFrom({ TRUST_PROXY: '1' }, 'http://127.0.0.1:8000', proxied)).toBe(303)
    expect(await signUpFrom({ TRUST_PROXY: '1' }, 'http://127.0.0.1:8000', { ...proxied, 'x-forwarded-host': 'CHAT.example:443' })).toBe(303)
  })

  test('without TRUST_PROXY, forwarded headers cannot make another origin ours', async () => {
    const claims = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'chat.example', origin: 'https://chat.example' }
    expect(await signUpFrom({}, 'http://127.0.0.1:8000', claims)).toBe(403)
    expect(await signUpFrom({}, 'http://chat.example', { ...claims, 'x-forwarded-host': 'evil.example', origin: 'https://evil.example' })).toBe(403)
  })

  test('without TRUST_PROXY the scheme is not compared, so a proxy we are not told about keeps working as before', async () => {
    expect(await signUpFrom({}, 'http://chat.example', { origin: 'https://chat.example' })).toBe(303)
  })

  test.each(['evil.example/path', 'user@evil.example', 'evil.example?x', 'chat.example, evil.example/'])(
    'a forwarded host that is not a bare host ("%s") is ignored for the Host the request came with',
    async (forwardedHost) => {
      const proxied = { 'x-forwarded-proto': 'https', 'x-forwarded-host': forwardedHost }
      expect(await signUpFrom({ TRUST_PROXY: '1' }, 'http://chat.example', { ...proxied, origin: 'https://evil.example' })).toBe(403)
      expect(await signUpFrom({ TRUST_PROXY: '1' }, 'http://chat.example', { ...proxied, origin: 'https://chat.example' })).toBe(303)
    },
  )
})
