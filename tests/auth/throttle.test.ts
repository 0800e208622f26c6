import { describe, expect, test } from 'bun:test'
import { testApp, type TestApp } from '../support/app'
import { call, uniqueName, type Reply } from '../support/http'

const PASSWORD = 'correct horse battery'

/** Login and signup from a client address of our choosing: the app believes one proxy's X-Forwarded-For. */
const from = (ip: string) => ({ 'x-forwarded-for': ip })
const login = (t: TestApp, username: string, password: string, ip = '198.51.100.1') =>
  call(t.app, 'POST', '/auth/login', { body: { username, password }, headers: from(ip) })
const signup = (t: TestApp, username: string, ip = '198.51.100.1') => call(t.app, 'POST', '/auth/signup', { body: { username, password: PASSWORD }, headers: from(ip) })

function expectThrottled(reply: Reply, windowSeconds: number) {
  expect(reply.status).toBe(429)
  expect(reply.body).toEqual({ error: { code: 'rate_limited', message: expect.stringMatching(/^Too many .*: try again in \d+ s$/) } })
  const retryAfter = Number(reply.headers.get('retry-after'))
  expect(retryAfter).toBeGreaterThanOrEqual(1)
  expect(retryAfter).toBeLessThanOrEqual(windowSeconds)
}

/** An app whose only limits are the given login and signup ones (the general request limit is off). */
const throttledApp = (limits: Record<string, string>) => testApp({ TRUST_PROXY: '1', AUTH_LIMIT_WINDOW_SECONDS: '600', ...limits })

describe('login throttling counts failures, not logins', () => {
  test('with the default limits, 30 successful logins in a row from one address all succeed', async () => {
    // An empty value is the variable's default (the test app turns these limits off otherwise).
    await using t = await testApp({
      TRUST_PROXY: '1',
      RATE_LIMIT_PER_MINUTE: '0',
      RATE_LIMIT_PER_HOUR: '0',
      LOGIN_FAILURE_LIMIT_PER_IP: '',
      LOGIN_FAILURE_LIMIT_PER_USERNAME: '',
      SIGNUP_LIMIT_PER_IP: '',
    })
    const username = uniqueName()
    expect((await signup(t, username)).status).toBe(201)
    for (let i = 0; i < 30; i++) expect((await login(t, username, PASSWORD)).status).toBe(200)
  })

  test('a username that failed too often is refused with 429 and Retry-After, the right password too; other usernames are not', async () => {
    await using t = await throttledApp({ LOGIN_FAILURE_LIMIT_PER_USERNAME: '3' })
    const victim = uniqueName()
    const bystander = uniqueName()
    await signup(t, victim)
    await signup(t, bystander)
    for (let i = 0; i < 3; i++) expect((await login(t, victim, 'wrong password', `203.0.113.${i}`)).status).toBe(401)
    expectThrottled(await login(t, victim, PASSWORD, '203.0.113.99'), 600)
    // Any case of the name is the same account, so the same count.
    expectThrottled(await login(t, victim.toUpperCase(), PASSWORD, '203.0.113.98'), 600)
    expect((await login(t, bystander, PASSWORD, '203.0.113.99')).status).toBe(200)
  })

  test('an address that failed too often is refused for every username, while other addresses log in', async () => {
    await using t = await throttledApp({ LOGIN_FAILURE_LIMIT_PER_IP: '4' })
    const alice = uniqueName()
    await signup(t, alice)
    for (let i = 0; i < 4; i++) expect((await login(t, uniqueName('guess'), 'wrong password', '192.0.2.66')).status).toBe(401)
    expectThrottled(await login(t, alice, PASSWORD, '192.0.2.66'), 600)
    expect((await login(t, alice, PASSWORD, '192.0.2.7')).status).toBe(200)
  })

  test('successes in between do not count: failures below the limit and any number of successes never lock anyone out', async () => {
    await using t = await throttledApp({ LOGIN_FAILURE_LIMIT_PER_IP: '3', LOGIN_FAILURE_LIMIT_PER_USERNAME: '3' })
    const alice = uniqueName()
    await signup(t, alice)
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 5; i++) expect((await login(t, alice, PASSWORD)).status).toBe(200)
      expect((await login(t, uniqueName('typo'), 'wrong password')).status).toBe(401)
    }
    // Three failures from this address, its limit: only now is the next attempt refused.
    expectThrottled(await login(t, alice, PASSWORD), 600)
  })

  test("a successful login clears its username's failures", async () => {
    await using t = await throttledApp({ LOGIN_FAILURE_LIMIT_PER_USERNAME: '3' })
    const alice = uniqueName()
    await signup(t, alice)
    for (let i = 0; i < 2; i++) expect((await login(t, alice, 'wrong password')).status).toBe(401)
    expect((await login(t, alice, PASSWORD)).status).toBe(200)
    for (let i = 0; i < 2; i++) expect((await login(t, alice, 'wrong password')).status).toBe(401)
    expect((await login(t, alice, PASSWORD)).status).toBe(200)
  })

  test('failures racing in parallel cannot get past the limit together', async () => {
    await using t = await throttledApp({ LOGIN_FAILURE_LIMIT_PER_USERNAME: '5' })
    const alice = uniqueName()
    await signup(t, alice)
    const replies = await Promise.all(Array.from({ length: 20 }, () => login(t, alice, 'wrong password')))
    expect(replies.filter((r) => r.status === 401)).toHaveLength(5)
    expect(replies.filter((r) => r.status === 429)).toHaveLength(15)
  })

  test('the web UI login form shares the counts and says why it refuses', async () => {
    await using t = await throttledApp({ LOGIN_FAILURE_LIMIT_PER_USERNAME: '2' })
    const alice = uniqueName()
    await signup(t, alice)
    for (let i = 0; i < 2; i++) expect((await login(t, alice, 'wrong password')).status).toBe(401)
    const form = await call(t.app, 'POST', '/ui/login', {
      raw: new URLSearchParams({ username: alice, password: PASSWORD }).toString(),
      headers: { ...from('198.51.100.1'), 'sec-fetch-site': 'same-origin', 'content-type': 'application/x-www-form-urlencoded' },
    })
    expect(form.status).toBe(429)
    expect(form.body).toMatch(/role="alert">Too many failed logins: try again in \d+ s</)
  })
})

describe('signup throttling', () => {
  test('signups are counted per address: past the limit, 429 with Retry-After, other addresses unaffected', async () => {
    await using t = await throttledApp({ SIGNUP_LIMIT_PER_IP: '2' })
    expect((await signup(t, uniqueName(), '192.0.2.10')).status).toBe(201)
    // A taken name counts too: trying names is what enumeration looks like.
    const taken = uniqueName()
    expect((await signup(t, taken, '192.0.2.11')).status).toBe(201)
    expect((await signup(t, taken, '192.0.2.10')).status).toBe(409)
    expectThrottled(await signup(t, uniqueName(), '192.0.2.10'), 600)
    expect((await signup(t, uniqueName(), '192.0.2.12')).status).toBe(201)
  })

  test('a signup the schema refuses is not counted', async () => {
    await using t = await throttledApp({ SIGNUP_LIMIT_PER_IP: '1' })
    for (let i = 0; i < 3; i++) expect((await call(t.app, 'POST', '/auth/signup', { body: { username: 'x' }, headers: from('192.0.2.20') })).status).toBe(422)
    expect((await signup(t, uniqueName(), '192.0.2.20')).status).toBe(201)
  })
})
