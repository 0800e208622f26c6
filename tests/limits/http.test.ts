import { describe, expect, test } from 'bun:test'
import { ACCESS_COOKIE, REFRESH_COOKIE } from '../../src/auth/credentials'
import { createTokens } from '../../src/auth/tokens'
import { createFrameLimiter, createPingLimiter, FRAME_REFUSALS_BEFORE_CLOSE } from '../../src/realtime/frame-limits'
import { clientIp } from '../../src/shared/http'
import { listen, testApp, type TestApp } from '../support/app'
import { account, call, conversation, uniqueName, type Reply } from '../support/http'
import { user } from '../support/services'
import * as conversations from '../../src/conversations/service'
import type { User } from '../../src/users/model'
import { attemptUpgrade, TestSocket } from '../support/ws'
import { openSession, refresh } from '../../src/auth/service'
import { FormClient } from '../support/form-client'

/** A user with a valid access token, made without HTTP so that no request is spent on it. */
async function signedIn(t: TestApp): Promise<User & { token: string }> {
  const stored = await user(t)
  return { ...stored, token: (await openSession(t.deps, stored.id)).access_token }
}

/** Tokens of the right shape and claims, signed with a key that is not the server's. */
const forger = createTokens({ secret: 'a-different-secret-of-at-least-32-characters', accessTtlSeconds: 600, refreshTtlSeconds: 600 })

const nowSeconds = () => Math.floor(Date.now() / 1000)

const rateHeaders = (reply: { headers: Headers }) => ({
  limit: reply.headers.get('x-ratelimit-limit'),
  remaining: reply.headers.get('x-ratelimit-remaining'),
  reset: reply.headers.get('x-ratelimit-reset'),
})

/** Spends `n` requests of whoever `token` names (or of the IP, without one), all of which must pass. */
async function spend(t: TestApp, n: number, token?: string): Promise<Reply[]> {
  const replies: Reply[] = []
  for (let i = 0; i < n; i++) {
    const reply = await call(t.app, 'GET', '/auth/me', { token })
    expect(reply.status).not.toBe(429)
    replies.push(reply)
  }
  return replies
}

function expectRefused(reply: Reply, windowSeconds: number) {
  expect(reply.status).toBe(429)
  expect(reply.headers.get('content-type')).toStartWith('application/json')
  expect(reply.body).toEqual({ error: { code: 'rate_limited', message: expect.stringContaining('Too many requests') } })
  const retryAfter = Number(reply.headers.get('retry-after'))
  expect(retryAfter).toBeGreaterThanOrEqual(1)
  expect(retryAfter).toBeLessThanOrEqual(windowSeconds)
  expect(reply.headers.get('x-ratelimit-remaining')).toBe('0')
  // The reset is when the retry may succeed.
  expect(Math.abs(Number(reply.headers.get('x-ratelimit-reset')) - (nowSeconds() + retryAfter))).toBeLessThanOrEqual(2)
}

describe('HTTP rate-limit headers', () => {
  test('a normal response carries the per-minute limit, a remaining count that goes down, and a reset within the minute', async () => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '60', RATE_LIMIT_PER_HOUR: '1000' })
    const alice = await signedIn(t)
    const before = nowSeconds()
    const [first, second] = await spend(t, 2, alice.token)
    expect(first!.status).toBe(200)
    expect(rateHeaders(first!)).toEqual({ limit: '60', remaining: '59', reset: expect.any(String) })
    expect(rateHeaders(second!)).toEqual({ limit: '60', remaining: '58', reset: first!.headers.get('x-ratelimit-reset') })
    const reset = Number(first!.headers.get('x-ratelimit-reset'))
    expect(reset).toBeGreaterThan(before)
    expect(reset).toBeLessThanOrEqual(nowSeconds() + 61)
    expect(first!.headers.get('retry-after')).toBeNull()
  })

  test('errors, redirects and refused bodies carry the headers too', async () => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '60', RATE_LIMIT_PER_HOUR: '1000' })
    const alice = await signedIn(t)
    const replies = [
      await call(t.app, 'GET', '/no/such/thing'),
      await call(t.app, 'GET', '/auth/me'),
      await call(t.app, 'POST', '/messages', { token: alice.token, body: {} }),
      await call(t.app, 'POST', '/messages', { token: alice.token, raw: 'x'.repeat(200 * 1024) }),
      await call(t.app, 'POST', '/ui/logout', { headers: { origin: 'http://localhost' } }),
    ]
    expect(replies.map((r) => r.status)).toEqual([404, 401, 422, 413, 303])
    for (const reply of replies) expect(rateHeaders(reply)).toEqual({ limit: '60', remaining: expect.stringMatching(/^\d+$/), reset: expect.stringMatching(/^\d+$/) })
  })

  test('over the limit the answer is 429 with Retry-After and the JSON error body', async () => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '3', RATE_LIMIT_PER_HOUR: '1000' })
    const alice = await signedIn(t)
    const replies = await spend(t, 3, alice.token)
    expect(replies.map((r) => r.headers.get('x-ratelimit-remaining'))).toEqual(['2', '1', '0'])
    const refused = await call(t.app, 'GET', '/auth/me', { token: alice.token })
    expectRefused(refused, 60)
    expect(refused.headers.get('x-ratelimit-limit')).toBe('3')
    expect(refused.headers.get('x-content-type-options')).toBe('nosniff')
  })

  test('a refused request is answered before its body is read or its handler runs', async () => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '3' })
    const alice = await signedIn(t)
    const bob = await signedIn(t)
    const direct = (await conversations.create(t.deps, alice, { member_ids: [bob.id] })).conversation
    await spend(t, 3, alice.token)
    expect((await call(t.app, 'POST', '/messages', { token: alice.token, raw: '{not json' })).status).toBe(429)
    const post = await call(t.app, 'POST', '/messages', { token: alice.token, body: { message_id: 'm-1', conversation_id: direct.id, content: 'hi' } })
    expect(post.status).toBe(429)
    expect((await t.sql<{ n: number }>('SELECT count(*) AS n FROM messages'))[0]!.n).toBe(0)
  })
})

describe('HTTP rate-limit keys', () => {
  test('two users from the same IP each get their own budget', async () => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '3' })
    const alice = await signedIn(t)
    const bob = await signedIn(t)
    await spend(t, 3, alice.token)
    expect((await call(t.app, 'GET', '/auth/me', { token: alice.token })).status).toBe(429)
    const bobs = await call(t.app, 'GET', '/auth/me', { token: bob.token })
    expect(bobs.status).toBe(200)
    expect(bobs.headers.get('x-ratelimit-remaining')).toBe('2')
  })

  test('unauthenticated requests are counted per client IP, apart from the users on it', async () => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '3' })
    const alice = await signedIn(t)
    const { http } = listen(t.app)
    for (const expected of ['2', '1', '0']) {
      const response = await fetch(`${http}/users`)
      expect(response.status).toBe(401)
      expect(response.headers.get('x-ratelimit-remaining')).toBe(expected)
    }
    expect((await fetch(`${http}/users`)).status).toBe(429)
    expect((await fetch(`${http}/auth/signup`, { method: 'POST' })).status).toBe(429)
    const alices = await fetch(`${http}/users`, { headers: { authorization: `Bearer ${alice.token}` } })
    expect(alices.status).toBe(200)
    expect(alices.headers.get('x-ratelimit-remaining')).toBe('2')
  })

  test('a forged token (right shape, wrong signature) counts against the IP, not the user it names', async () => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '3' })
    const alice = await signedIn(t)
    const forged = (await forger.issuePair({ userId: alice.id, sessionId: 'forged-session', version: 0 }, { refreshJti: 'forged-jti', issuedAt: Date.now() })).access_token
    const replies = await spend(t, 3, forged)
    expect(replies.map((r) => [r.status, r.headers.get('x-ratelimit-remaining')])).toEqual([
      [401, '2'],
      [401, '1'],
      [401, '0'],
    ])
    expect((await call(t.app, 'GET', '/auth/me', { token: forged })).status).toBe(429)
    expect((await call(t.app, 'GET', '/auth/me')).status).toBe(429) // the same IP, no token
    const alices = await call(t.app, 'GET', '/auth/me', { token: alice.token })
    expect(alices.status).toBe(200)
    expect(alices.headers.get('x-ratelimit-remaining')).toBe('2')
  })

  test("the web UI's session cookie counts against its user once verified, and a forged one against the IP", async () => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '2' })
    const alice = await signedIn(t)
    const forged = (await forger.issuePair({ userId: alice.id, sessionId: 'forged-session', version: 0 }, { refreshJti: 'forged-jti', issuedAt: Date.now() })).access_token
    const page = (token: string) => call(t.app, 'GET', '/', { headers: { cookie: `${ACCESS_COOKIE}=${token}` } })
    expect((await page(forged)).headers.get('x-ratelimit-remaining')).toBe('1')
    expect((await page(forged)).headers.get('x-ratelimit-remaining')).toBe('0')
    expect((await page(forged)).status).toBe(429)
    const alices = await page(alice.token)
    expect(alices.status).toBe(200)
    expect(alices.headers.get('x-ratelimit-remaining')).toBe('1')
  })
})

describe('tokens of sessions that are not open count against the IP', () => {
  const victimIp = { 'x-forwarded-for': '198.51.100.7' }
  const attackerIp = { 'x-forwarded-for': '203.0.113.66' }

  test.each([
    ['refresh', REFRESH_COOKIE],
    ['access', ACCESS_COOKIE],
  ])("a logged-out session's %s cookie, hammered, spends the sender's IP budget and never locks its user out", async (_, cookieName) => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '5', TRUST_PROXY: 'true' })
    const victim = new FormClient(t.app)
    const username = uniqueName()
    expect((await victim.post('/ui/signup', { username, password: 'correct horse battery' }, victimIp)).status).toBe(303)
    const dead = victim.cookies.get(cookieName)!
    expect((await victim.post('/ui/logout', {}, victimIp)).status).toBe(303)

    const hammer = () => call(t.app, 'GET', '/', { headers: { ...attackerIp, cookie: `${cookieName}=${dead}` } })
    for (const remaining of ['4', '3', '2', '1', '0']) expect((await hammer()).headers.get('x-ratelimit-remaining')).toBe(remaining)
    expect((await hammer()).status).toBe(429)
    expect((await call(t.app, 'GET', '/', { headers: attackerIp })).status).toBe(429) // the same IP, no cookie

    expect((await victim.post('/ui/login', { username, password: 'correct horse battery' }, victimIp)).status).toBe(303)
    const page = await victim.get('/', victimIp)
    expect(page.status).toBe(200)
    expect(page.body).toContain('Logout')
    // Only the victim's own logout was counted against them.
    expect(page.headers.get('x-ratelimit-remaining')).toBe('3')
  })

  test('a used-up refresh token of an open session counts against the IP, and leaves its user and the session alone', async () => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '3', TRUST_PROXY: 'true' })
    const stored = await user(t)
    const issued = await openSession(t.deps, stored.id)
    const rotated = await refresh(t.deps, issued.refresh_token)
    const latest = await refresh(t.deps, rotated.refresh_token)
    const hammer = () => call(t.app, 'GET', '/users', { headers: { ...attackerIp, cookie: `${REFRESH_COOKIE}=${issued.refresh_token}` } })
    for (let i = 0; i < 3; i++) expect((await hammer()).status).toBe(401)
    expect((await hammer()).status).toBe(429)
    const own = await call(t.app, 'GET', '/users', { token: latest.access_token, headers: victimIp })
    expect(own.status).toBe(200)
    expect(own.headers.get('x-ratelimit-remaining')).toBe('2')
  })

  test('the refresh token just replaced, within the reuse grace, still counts against its user', async () => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '3', TRUST_PROXY: 'true' })
    const stored = await user(t)
    const issued = await openSession(t.deps, stored.id)
    const rotated = await refresh(t.deps, issued.refresh_token)
    const replaced = await call(t.app, 'GET', '/users', { headers: { ...victimIp, cookie: `${REFRESH_COOKIE}=${issued.refresh_token}` } })
    expect(replaced.headers.get('x-ratelimit-remaining')).toBe('2')
    expect((await call(t.app, 'GET', '/users', { headers: victimIp })).headers.get('x-ratelimit-remaining')).toBe('2')
    expect((await call(t.app, 'GET', '/users', { token: rotated.access_token, headers: attackerIp })).headers.get('x-ratelimit-remaining')).toBe('1')
  })
})

describe('HTTP rate-limit windows', () => {
  test('the hour window refuses once spent, with a reset and Retry-After up to an hour away', async () => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '10', RATE_LIMIT_PER_HOUR: '3' })
    const alice = await signedIn(t)
    const replies = await spend(t, 3, alice.token)
    // The limit named is the per-minute one; what remains is the hour's, which binds.
    expect(replies.map(rateHeaders).map((h) => [h.limit, h.remaining])).toEqual([
      ['10', '2'],
      ['10', '1'],
      ['10', '0'],
    ])
    expect(Number(replies[0]!.headers.get('x-ratelimit-reset'))).toBeGreaterThan(nowSeconds() + 3000)
    const refused = await call(t.app, 'GET', '/auth/me', { token: alice.token })
    expectRefused(refused, 3600)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(3000)
  })

  test('a refusal by the minute window does not use up the hour', async () => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '2', RATE_LIMIT_PER_HOUR: '5' })
    const alice = await signedIn(t)
    await spend(t, 2, alice.token)
    for (let i = 0; i < 5; i++) expect((await call(t.app, 'GET', '/auth/me', { token: alice.token })).status).toBe(429)
    // Had the refusals counted, the hour (5) would be spent and Retry-After would be the hour's.
    const refused = await call(t.app, 'GET', '/auth/me', { token: alice.token })
    expectRefused(refused, 60)
  })

  test('0 turns the minute window off: the hour one is named and enforced', async () => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_PER_HOUR: '3' })
    const replies = await spend(t, 3)
    expect(replies.map(rateHeaders).map((h) => [h.limit, h.remaining])).toEqual([
      ['3', '2'],
      ['3', '1'],
      ['3', '0'],
    ])
    expectRefused(await call(t.app, 'GET', '/auth/me'), 3600)
  })

  test('0 turns the hour window off: only the minute one counts', async () => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '3', RATE_LIMIT_PER_HOUR: '0' })
    const replies = await spend(t, 3)
    expect(replies.map(rateHeaders).map((h) => [h.limit, h.remaining])).toEqual([
      ['3', '2'],
      ['3', '1'],
      ['3', '0'],
    ])
    expectRefused(await call(t.app, 'GET', '/auth/me'), 60)
  })

  test('with both windows at 0 nothing is limited and no response carries the headers', async () => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_PER_HOUR: '0' })
    const replies = await spend(t, 70)
    for (const reply of replies) {
      expect(reply.status).toBe(401)
      expect(rateHeaders(reply)).toEqual({ limit: null, remaining: null, reset: null })
    }
  })
})

describe('exempt paths', () => {
  test('health, readiness, metrics, docs and static assets are never limited and carry no rate-limit headers', async () => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '1', RATE_LIMIT_PER_HOUR: '1' })
    await spend(t, 1)
    expect((await call(t.app, 'GET', '/auth/me')).status).toBe(429)
    const paths = ['/health', '/ready', '/metrics', '/docs', '/docs/json', '/docs/assets/init.js', '/static/app.css', '/static/no-such-file']
    for (let round = 0; round < 3; round++) {
      for (const path of paths) {
        const reply = await call(t.app, 'GET', path)
        expect([path, reply.status === 429]).toEqual([path, false])
        expect([path, rateHeaders(reply)]).toEqual([path, { limit: null, remaining: null, reset: null }])
      }
    }
    expect((await call(t.app, 'GET', '/health')).status).toBe(200)
    expect((await call(t.app, 'GET', '/docs/json')).status).toBe(200)
    expect((await call(t.app, 'GET', '/static/app.css')).status).toBe(200)
  })

  test('a path that only starts like an exempt one is limited', async () => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '1' })
    expect((await call(t.app, 'GET', '/healthz')).headers.get('x-ratelimit-remaining')).toBe('0')
    expect((await call(t.app, 'GET', '/docsx')).status).toBe(429)
  })
})

describe('client IP and TRUST_PROXY', () => {
  test('without TRUST_PROXY, X-Forwarded-For is ignored: two forwarded addresses share the socket\'s budget', async () => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '2' })
    const { http } = listen(t.app)
    const from = (address: string) => fetch(`${http}/users`, { headers: { 'x-forwarded-for': address } })
    expect((await from('198.51.100.1')).status).toBe(401)
    expect((await from('198.51.100.1')).status).toBe(401)
    expect((await from('198.51.100.2')).status).toBe(429)
  })

  test('with TRUST_PROXY, each forwarded client has its own budget', async () => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '2', TRUST_PROXY: 'true' })
    const { http } = listen(t.app)
    const from = (address: string) => fetch(`${http}/users`, { headers: { 'x-forwarded-for': address } })
    expect((await from('198.51.100.1')).status).toBe(401)
    expect((await from('198.51.100.1')).status).toBe(401)
    expect((await from('198.51.100.1')).status).toBe(429)
    const other = await from('198.51.100.2')
    expect(other.status).toBe(401)
    expect(other.headers.get('x-ratelimit-remaining')).toBe('1')
  })

  test('behind one trusted proxy, a client cannot choose its key by sending its own X-Forwarded-For', async () => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '2', TRUST_PROXY: '1' })
    const { http } = listen(t.app)
    // The proxy appends the address it saw; whatever the client wrote is to its left.
    const from = (forwarded: string) => fetch(`${http}/users`, { headers: { 'x-forwarded-for': forwarded } })
    expect((await from('10.0.0.1, 203.0.113.9')).status).toBe(401)
    expect((await from('10.0.0.2, 203.0.113.9')).status).toBe(401)
    expect((await from('10.0.0.3, 203.0.113.9')).status).toBe(429)
  })

  test('the client address is the Nth from the right of X-Forwarded-For behind N proxies, else the socket', () => {
    const request = (forwarded?: string) => new Request('http://localhost/', { headers: forwarded ? { 'x-forwarded-for': forwarded } : {} })
    const socket = { requestIP: () => ({ address: '::ffff:192.0.2.1' }) }
    expect(clientIp(request('203.0.113.9'), socket, 0)).toBe('192.0.2.1')
    expect(clientIp(request('spoofed, 203.0.113.9'), socket, 1)).toBe('203.0.113.9')
    expect(clientIp(request('spoofed, 203.0.113.9, 10.0.0.2'), socket, 2)).toBe('203.0.113.9')
    expect(clientIp(request('203.0.113.9'), socket, 3)).toBe('203.0.113.9')
    expect(clientIp(request('203.0.113.9:4711'), socket, 1)).toBe('203.0.113.9')
    expect(clientIp(request('[2001:DB8::1]:4711'), socket, 1)).toBe('2001:db8::1')
    expect(clientIp(request('not-an-address'), socket, 1)).toBe('192.0.2.1')
    expect(clientIp(request(), socket, 1)).toBe('192.0.2.1')
    expect(clientIp(request(), null, 0)).toBe('unknown')
  })
})

describe('WebSocket', () => {
  test('the upgrade counts as one HTTP request of its user', async () => {
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '3' })
    const alice = await signedIn(t)
    const { http, ws } = listen(t.app)
    await spend(t, 2, alice.token)
    using _socket = await TestSocket.open(`${ws}?token=${alice.token}`)
    expect((await call(t.app, 'GET', '/auth/me', { token: alice.token })).status).toBe(429)
    const again = await attemptUpgrade(`${http}/ws?token=${alice.token}`)
    expect(again).toEqual({ status: 429, body: { error: { code: 'rate_limited', message: expect.any(String) } } })
  })

  test('a frame over the per-connection limit gets a rate_limited error frame and is not processed', async () => {
    await using t = await testApp({ WS_FRAME_LIMIT_PER_MINUTE: '3' })
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const direct = await conversation(t.app, alice, [await account(t.app)])
    using socket = await TestSocket.open(`${ws}?token=${alice.token}`)
    const message = (id: string) => ({ type: 'message', message_id: id, conversation_id: direct.id, content: id })
    for (const id of ['m-1', 'm-2', 'm-3']) socket.send(message(id))
    socket.send(message('m-4'))
    const error = await socket.nextOfType('error')
    expect(error).toEqual({ type: 'error', error: { code: 'rate_limited', message: expect.stringContaining('at most 3 a minute') } })
    const stored = (await t.sql<{ message_id: string }>('SELECT message_id FROM messages ORDER BY seq'))
    expect(stored.map((r) => r.message_id)).toEqual(['m-1', 'm-2', 'm-3'])
    expect(socket.received.filter((f) => f.type === 'message').map((f) => f.message.message_id)).toEqual(['m-1', 'm-2', 'm-3'])
    // Each connection has its own budget.
    using second = await TestSocket.open(`${ws}?token=${alice.token}`)
    second.send({ type: 'ping' })
    expect(await second.nextOfType('pong')).toEqual({ type: 'pong' })
  })

  test(`sustained abuse closes the socket with 1008 on the ${FRAME_REFUSALS_BEFORE_CLOSE}th refused frame`, async () => {
    await using t = await testApp({ WS_FRAME_LIMIT_PER_MINUTE: '2' })
    const { ws } = listen(t.app)
    const alice = await signedIn(t)
    const socket = await TestSocket.open(`${ws}?token=${alice.token}`)
    for (let i = 0; i < 2 + FRAME_REFUSALS_BEFORE_CLOSE - 1; i++) socket.send({ type: 'ping' })
    for (let i = 0; i < 2; i++) await socket.nextOfType('pong')
    for (let i = 0; i < FRAME_REFUSALS_BEFORE_CLOSE - 1; i++) expect((await socket.nextOfType('error')).error.code).toBe('rate_limited')
    expect(socket.ws.readyState).toBe(WebSocket.OPEN)
    socket.send({ type: 'ping' })
    const closed = await socket.closed
    expect(closed.code).toBe(1008)
    expect(socket.received.filter((f) => f.type === 'error')).toHaveLength(FRAME_REFUSALS_BEFORE_CLOSE)
  })

  test('frames that arrive in the same burst after the closing one are neither processed nor refused', async () => {
    await using t = await testApp({ WS_FRAME_LIMIT_PER_MINUTE: '2' })
    const { ws } = listen(t.app)
    const alice = await signedIn(t)
    const socket = await TestSocket.open(`${ws}?token=${alice.token}`)
    for (let i = 0; i < 2 + FRAME_REFUSALS_BEFORE_CLOSE + 5; i++) socket.send({ type: 'ping' })
    expect((await socket.closed).code).toBe(1008)
    expect(socket.received.map((f) => f.type)).toEqual(['ready', 'pong', 'pong', ...Array(FRAME_REFUSALS_BEFORE_CLOSE).fill('error')])
  })
})

describe('the frame limit of one connection', () => {
  const limiter = (perMinute: number, clock: { now: number }) => createFrameLimiter({ config: { wsFrameLimitPerMinute: perMinute } }, () => clock.now)
  const freshWindow = () => ({ frameWindowStart: 0, framesInWindow: 0 })

  test('is a window that starts with the first frame and lasts a minute; refused frames count in it too', () => {
    const clock = { now: 1_000_000 }
    const frames = limiter(2, clock)
    const connection = freshWindow()
    expect(frames.count(connection)).toBeNull()
    clock.now += 59_000
    expect(frames.count(connection)).toBeNull()
    expect(frames.count(connection)).toEqual({ code: 'rate_limited', message: 'Too many frames: at most 2 a minute; try again in 1 s', close: false })
    expect(connection).toEqual({ frameWindowStart: 1_000_000, framesInWindow: 3 })
    clock.now += 1_000
    expect(frames.count(connection)).toBeNull()
    expect(connection).toEqual({ frameWindowStart: 1_060_000, framesInWindow: 1 })
  })

  test(`the ${FRAME_REFUSALS_BEFORE_CLOSE}th refused frame of a window asks for the socket to be closed`, () => {
    const clock = { now: 5_000 }
    const frames = limiter(1, clock)
    const connection = freshWindow()
    expect(frames.count(connection)).toBeNull()
    const closes = Array.from({ length: FRAME_REFUSALS_BEFORE_CLOSE }, () => frames.count(connection)?.close)
    expect(closes).toEqual([...Array(FRAME_REFUSALS_BEFORE_CLOSE - 1).fill(false), true])
  })

  test('connections are counted apart, and a limit of 0 lets every frame through', () => {
    const clock = { now: 0 }
    const frames = limiter(1, clock)
    const [first, second] = [freshWindow(), freshWindow()]
    expect(frames.count(first)).toBeNull()
    expect(frames.count(second)).toBeNull()
    expect(frames.count(first)?.code).toBe('rate_limited')
    const off = limiter(0, clock)
    const connection = freshWindow()
    for (let i = 0; i < 1000; i++) expect(off.count(connection)).toBeNull()
  })
})

describe('the ping limit of one connection', () => {
  const limiter = (perMinute: number, clock: { now: number }) => createPingLimiter({ config: { wsPingLimitPerMinute: perMinute } }, () => clock.now)
  const freshWindow = () => ({ pingWindowStart: 0, pingsInWindow: 0 })

  test('asks once for the socket to be closed, at the first ping over the limit within a minute', () => {
    const clock = { now: 1_000_000 }
    const pings = limiter(3, clock)
    const connection = freshWindow()
    expect(Array.from({ length: 6 }, () => pings.count(connection))).toEqual([false, false, false, true, false, false])
  })

  test('is a window that starts with the first ping and lasts a minute', () => {
    const clock = { now: 1_000_000 }
    const pings = limiter(2, clock)
    const connection = freshWindow()
    expect(pings.count(connection)).toBe(false)
    clock.now += 59_999
    expect(pings.count(connection)).toBe(false)
    clock.now += 1
    expect([pings.count(connection), pings.count(connection)]).toEqual([false, false])
    expect(connection).toEqual({ pingWindowStart: 1_060_000, pingsInWindow: 2 })
  })
})
