import { afterEach, describe, expect, setSystemTime, test } from 'bun:test'
import { SignJWT, UnsecuredJWT } from 'jose'
import { authenticate } from '../../src/auth/service'
import { observeQueries, type QueryOperation } from '../../src/db/client'
import { sqliteOf, listen, TEST_SECRET, testApp, type TestApp } from '../support/app'
import { FormClient } from '../support/form-client'
import { account, call, uniqueName } from '../support/http'
import { attemptUpgrade, TestSocket } from '../support/ws'

const password = 'correct horse battery'

/** Another login (another device) of an existing account. */
async function loginAgain(t: TestApp, username: string) {
  const reply = await call(t.app, 'POST', '/auth/login', { body: { username, password } })
  return { token: reply.body.access_token as string, refresh: reply.body.refresh_token as string }
}

const refresh = (t: TestApp, token: string) => call(t.app, 'POST', '/auth/refresh', { body: { refresh_token: token } })
const me = (t: TestApp, token: string) => call(t.app, 'GET', '/auth/me', { token })

describe('refresh tokens rotate', () => {
  test('each refresh token works once and hands out the next', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const first = await refresh(t, alice.refresh)
    expect(first.status).toBe(200)
    const second = await refresh(t, first.body.refresh_token)
    expect(second.status).toBe(200)
    expect((await me(t, second.body.access_token)).body.id).toBe(alice.id)
  })

  test('a token two rotations old ends the whole session: 401 token_reused, and the newest tokens stop working too', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const rotated = await refresh(t, alice.refresh)
    const newest = await refresh(t, rotated.body.refresh_token)
    // Every access token in use (so their open session is remembered) before the reuse ends it.
    for (const token of [alice.token, rotated.body.access_token, newest.body.access_token]) expect((await me(t, token)).status).toBe(200)
    const reuse = await refresh(t, alice.refresh)
    expect(reuse.status).toBe(401)
    expect(reuse.body.error.code).toBe('token_reused')
    expect((await refresh(t, newest.body.refresh_token)).status).toBe(401)
    for (const token of [alice.token, rotated.body.access_token, newest.body.access_token]) expect((await me(t, token)).status).toBe(401)
  })

  test("ending one session leaves the user's other sessions alone", async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const laptop = await loginAgain(t, alice.username)
    const rotated = await refresh(t, alice.refresh)
    await refresh(t, rotated.body.refresh_token)
    expect((await refresh(t, alice.refresh)).body.error.code).toBe('token_reused') // ends the first session only
    expect((await me(t, laptop.token)).status).toBe(200)
    expect((await refresh(t, laptop.refresh)).status).toBe(200)
  })
})

describe('the reuse grace (REFRESH_REUSE_GRACE_SECONDS)', () => {
  afterEach(() => setSystemTime())

  test('the token just replaced is answered again with exactly the pair its exchange gave, and the session stays open', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const first = await refresh(t, alice.refresh)
    const again = await refresh(t, alice.refresh)
    expect(again.status).toBe(200)
    expect(again.body).toEqual(first.body)
    expect((await me(t, first.body.access_token)).status).toBe(200)
    expect((await refresh(t, first.body.refresh_token)).status).toBe(200)
  })

  test('two refreshes racing with one token both get the same new pair', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const replies = await Promise.all([refresh(t, alice.refresh), refresh(t, alice.refresh)])
    expect(replies.map((r) => r.status)).toEqual([200, 200])
    expect(replies[1]!.body).toEqual(replies[0]!.body)
    expect((await me(t, replies[0]!.body.access_token)).status).toBe(200)
  })

  test('after the grace, the token just replaced ends the session like any other reuse', async () => {
    await using t = await testApp({ REFRESH_REUSE_GRACE_SECONDS: '30' })
    const alice = await account(t.app)
    const first = await refresh(t, alice.refresh)
    expect((await me(t, first.body.access_token)).status).toBe(200)
    setSystemTime(new Date(Date.now() + 30_000))
    const late = await refresh(t, alice.refresh)
    expect(late.status).toBe(401)
    expect(late.body.error.code).toBe('token_reused')
    expect((await me(t, first.body.access_token)).status).toBe(401)
    expect((await refresh(t, first.body.refresh_token)).status).toBe(401)
  })

  test('0 turns it off: two refreshes racing with one token, exactly one wins, and the session then ends', async () => {
    await using t = await testApp({ REFRESH_REUSE_GRACE_SECONDS: '0' })
    const alice = await account(t.app)
    const replies = await Promise.all([refresh(t, alice.refresh), refresh(t, alice.refresh)])
    expect(replies.map((r) => r.status).sort()).toEqual([200, 401])
    expect(replies.find((r) => r.status === 401)!.body.error.code).toBe('token_reused')
    const winner = replies.find((r) => r.status === 200)!
    expect((await me(t, winner.body.access_token)).status).toBe(401)
  })

  test('it is kept with the session: after a restart the token just replaced still gets the same pair', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const first = await refresh(t, alice.refresh)
    await using restarted = await t.restart()
    const again = await call(restarted.app, 'POST', '/auth/refresh', { body: { refresh_token: alice.refresh } })
    expect(again.body).toEqual(first.body)
  })
})

describe('open sessions are remembered', () => {
  test("a session's later requests read no session row, and ending it still refuses the very next one", async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const reads: QueryOperation[] = []
    observeQueries(sqliteOf(t).sqlite, { statement: (operation) => void reads.push(operation), transaction() {} })
    await authenticate(t.deps.store, t.deps.tokens, alice.token)
    expect(reads).toEqual(['select'])
    const again = await authenticate(t.deps.store, t.deps.tokens, alice.token)
    expect(again.user.id).toBe(alice.id)
    expect(reads).toEqual(['select'])
    expect((await call(t.app, 'POST', '/auth/logout', { token: alice.token })).status).toBe(204)
    await expect(authenticate(t.deps.store, t.deps.tokens, alice.token)).rejects.toMatchObject({ status: 401, code: 'session_ended' })
  })

  test('the same token under another user id or token version is read again, not taken from memory', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const claims = await t.deps.tokens.verify(alice.token, 'access')
    await authenticate(t.deps.store, t.deps.tokens, alice.token)
    const forged = (changes: Partial<typeof claims>) => ({ ...t.deps.tokens, verify: async () => ({ ...claims, ...changes }) })
    const bob = await account(t.app)
    await expect(authenticate(t.deps.store, forged({ userId: bob.id }), alice.token)).rejects.toMatchObject({ code: 'session_ended' })
    await expect(authenticate(t.deps.store, forged({ version: claims.version + 1 }), alice.token)).rejects.toMatchObject({ code: 'session_ended' })
  })
})

describe('POST /auth/logout', () => {
  test("ends this session: 204, its access and refresh tokens are refused, other sessions live on", async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const phone = await loginAgain(t, alice.username)
    const reply = await call(t.app, 'POST', '/auth/logout', { token: alice.token })
    expect(reply.status).toBe(204)
    expect((await me(t, alice.token)).body.error.code).toBe('session_ended')
    expect((await refresh(t, alice.refresh)).status).toBe(401)
    expect((await me(t, phone.token)).status).toBe(200)
  })

  test("closes this session's sockets with 1008 and leaves other sessions' sockets open", async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const phone = await loginAgain(t, alice.username)
    const laptopSocket = await TestSocket.open(`${ws}?token=${alice.token}`)
    using phoneSocket = await TestSocket.open(`${ws}?token=${phone.token}`)
    await call(t.app, 'POST', '/auth/logout', { token: alice.token })
    const closed = await laptopSocket.closed
    expect(closed.code).toBe(1008)
    expect(await phoneSocket.drain()).toEqual([])
  })

  test('a token of an ended session cannot open a socket', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app)
    await call(t.app, 'POST', '/auth/logout', { token: alice.token })
    expect((await attemptUpgrade(`${http}/ws?token=${alice.token}`)).status).toBe(401)
  })

  test('needs a token', async () => {
    await using t = await testApp()
    expect((await call(t.app, 'POST', '/auth/logout')).status).toBe(401)
  })
})

describe('POST /auth/logout-all', () => {
  test('ends every session of the user on every device; sockets close with 1008; logging in again works', async () => {
    await using t = await testApp()
    const { http, ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const phone = await loginAgain(t, alice.username)
    const laptopSocket = await TestSocket.open(`${ws}?token=${alice.token}`)
    const phoneSocket = await TestSocket.open(`${ws}?token=${phone.token}`)
    using bobSocket = await TestSocket.open(`${ws}?token=${bob.token}`)
    expect((await call(t.app, 'POST', '/auth/logout-all', { token: phone.token })).status).toBe(204)
    expect((await laptopSocket.closed).code).toBe(1008)
    expect((await phoneSocket.closed).code).toBe(1008)
    for (const token of [alice.token, phone.token]) expect((await me(t, token)).status).toBe(401)
    for (const token of [alice.refresh, phone.refresh]) expect((await refresh(t, token)).status).toBe(401)
    expect((await attemptUpgrade(`${http}/ws?token=${phone.token}`)).status).toBe(401)
    expect(await bobSocket.drain()).toEqual([])
    const fresh = await loginAgain(t, alice.username)
    expect((await me(t, fresh.token)).status).toBe(200)
  })
})

describe('the web UI session', () => {
  test("logging out of the page ends the session itself, not only the browser's cookies", async () => {
    await using t = await testApp()
    const client = new FormClient(t.app)
    await client.signUp(uniqueName())
    const stolen = new Map(client.cookies)
    await client.post('/ui/logout', {})
    const thief = new FormClient(t.app)
    for (const [name, value] of stolen) thief.cookies.set(name, value)
    expect((await thief.get('/')).body).toContain('>Sign Up</a>')
  })

  test('a silent refresh rotates the refresh cookie', async () => {
    await using t = await testApp()
    const client = new FormClient(t.app)
    await client.signUp(uniqueName(), 'Alice')
    const oldRefresh = client.cookies.get('pneumatic_refresh')!
    client.cookies.delete('pneumatic_access') // expired, as the browser would drop it
    expect((await client.get('/')).body).toContain('<span class="me">Alice</span>')
    const newRefresh = client.cookies.get('pneumatic_refresh')
    expect(newRefresh).not.toBe(oldRefresh)
    // The old one is spent: within the grace it only gets the cookies the browser already has.
    expect((await refresh(t, oldRefresh)).body.refresh_token).toBe(newRefresh)
  })
})

test('sessions survive a restart: tokens issued before still work after', async () => {
  await using t = await testApp()
  const alice = await account(t.app, uniqueName(), 'Alice')
  await using restarted = await t.restart()
  expect((await call(restarted.app, 'GET', '/auth/me', { token: alice.token })).body.full_name).toBe('Alice')
  expect((await call(restarted.app, 'POST', '/auth/refresh', { body: { refresh_token: alice.refresh } })).status).toBe(200)
})

describe('forged and expired tokens on the WebSocket upgrade', () => {
  const key = new TextEncoder().encode(TEST_SECRET)
  const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString())
  const now = () => Math.floor(Date.now() / 1000)
  const forgeries: Array<[string, (token: string) => Promise<string> | string]> = [
    ['alg none', (token) => new UnsecuredJWT(claimsOf(token)).encode()],
    ['HS512 with the same secret', (token) => new SignJWT(claimsOf(token)).setProtectedHeader({ alg: 'HS512', typ: 'at+jwt' }).sign(key)],
    [
      'no exp',
      (token) => {
        const { exp: _, ...claims } = claimsOf(token)
        return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' }).sign(key)
      },
    ],
    ['an expired token', (token) => new SignJWT({ ...claimsOf(token), iat: now() - 100, exp: now() - 10 }).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' }).sign(key)],
    ['a refresh token', (token) => new SignJWT(claimsOf(token)).setProtectedHeader({ alg: 'HS256', typ: 'rt+jwt' }).sign(key)],
  ]
  test.each(forgeries)('%s is refused with 401, never 101', async (_, forge) => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app)
    const forged = await forge(alice.token)
    expect((await attemptUpgrade(`${http}/ws?token=${forged}`)).status).toBe(401)
    expect((await attemptUpgrade(`${http}/ws`, { authorization: `Bearer ${forged}` })).status).toBe(401)
  })

  test('the genuine token (the base of every forgery above) is accepted', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const resigned = await new SignJWT(claimsOf(alice.token)).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' }).sign(key)
    using socket = await TestSocket.open(`${ws}?token=${resigned}`)
    expect(socket.received[0]).toEqual({ type: 'ready', user_id: alice.id })
  })
})
