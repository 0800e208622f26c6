import { describe, expect, test } from 'bun:test'
import { SignJWT, UnsecuredJWT } from 'jose'
import { account, call, uniqueName } from '../support/http'
import { sqliteOf, TEST_SECRET, testApp } from '../support/app'

const key = new TextEncoder().encode(TEST_SECRET)

/** The session claims (sid, ver) of a real token, to forge one whose only flaw is the one tested. */
const sessionClaims = (token: string) => {
  const { sid, ver } = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString())
  return { sid, ver }
}
const password = 'password123'

describe('POST /auth/signup', () => {
  test('creates an account and answers 201 with the user, never the hash', async () => {
    await using t = await testApp()
    const reply = await call(t.app, 'POST', '/auth/signup', { body: { username: 'alice', password, full_name: 'Alice Smith' } })
    expect(reply.status).toBe(201)
    expect(reply.body).toEqual({ id: expect.any(String), username: 'alice', full_name: 'Alice Smith' })
    const row = sqliteOf(t).sqlite.query('SELECT password_hash FROM users WHERE id = ?').get(reply.body.id) as { password_hash: string }
    expect(row.password_hash).toStartWith('$argon2id$')
  })

  test('full_name is optional and blank means none', async () => {
    await using t = await testApp()
    expect((await call(t.app, 'POST', '/auth/signup', { body: { username: 'bob', password } })).body.full_name).toBeNull()
    expect((await call(t.app, 'POST', '/auth/signup', { body: { username: 'carol', password, full_name: '   ' } })).body.full_name).toBeNull()
  })

  test('a full_name with a bidi override or NUL is 422 naming full_name, and no account is made', async () => {
    await using t = await testApp()
    for (const [username, full_name] of [['alice', 'Alice \u202Ehtims'], ['bob', 'Bob\u0000Admin']]) {
      const reply = await call(t.app, 'POST', '/auth/signup', { body: { username, password, full_name } })
      expect(reply.status).toBe(422)
      expect(reply.body.error.code).toBe('validation_failed')
      expect(reply.body.error.details.map((d: { field: string }) => d.field)).toEqual(['full_name'])
    }
    expect(sqliteOf(t).sqlite.query('SELECT count(*) AS n FROM users').get()).toEqual({ n: 0 })
  })

  test('a full_name with nothing visible (zero-width only) means none, so the username is shown', async () => {
    await using t = await testApp()
    const reply = await call(t.app, 'POST', '/auth/signup', { body: { username: 'carol', password, full_name: '\u200B\u200D\uFEFF' } })
    expect(reply.status).toBe(201)
    expect(reply.body.full_name).toBeNull()
  })

  test('a taken username is 409, whatever its case', async () => {
    await using t = await testApp()
    await call(t.app, 'POST', '/auth/signup', { body: { username: 'alice', password } })
    const reply = await call(t.app, 'POST', '/auth/signup', { body: { username: 'ALICE', password } })
    expect(reply.status).toBe(409)
    expect(reply.body.error.code).toBe('conflict')
  })

  test.each([
    ['a username shorter than 3', { username: 'ab', password }, 'username'],
    ['a username longer than 32', { username: 'a'.repeat(33), password }, 'username'],
    ['a username with a space', { username: 'al ice', password }, 'username'],
    ['a username with markup', { username: '<img>', password }, 'username'],
    ['a password shorter than 8', { username: 'alice', password: 'short' }, 'password'],
    ['a password longer than 256', { username: 'alice', password: 'p'.repeat(257) }, 'password'],
    ['a full_name longer than 100', { username: 'alice', password, full_name: 'x'.repeat(101) }, 'full_name'],
    ['a missing password', { username: 'alice' }, 'password'],
    ['a number for a username', { username: 12345, password }, 'username'],
  ])('%s is 422 naming the field', async (_, body, field) => {
    await using t = await testApp()
    const reply = await call(t.app, 'POST', '/auth/signup', { body })
    expect(reply.status).toBe(422)
    expect(reply.body.error.code).toBe('validation_failed')
    expect(reply.body.error.details.map((d: { field: string }) => d.field)).toContain(field)
  })

  test('accepts usernames of exactly 3 and 32 allowed characters', async () => {
    await using t = await testApp()
    expect((await call(t.app, 'POST', '/auth/signup', { body: { username: 'a.b', password: 'p'.repeat(8) } })).status).toBe(201)
    expect((await call(t.app, 'POST', '/auth/signup', { body: { username: 'A_z-9'.repeat(6) + 'xy', password: 'p'.repeat(256) } })).status).toBe(201)
  })

  test('malformed JSON is 400 in the error shape', async () => {
    await using t = await testApp()
    const reply = await call(t.app, 'POST', '/auth/signup', { raw: '{"username":' })
    expect(reply.status).toBe(400)
    expect(reply.body).toEqual({ error: { code: 'invalid_json', message: expect.any(String) } })
  })
})

describe('POST /auth/login', () => {
  test('returns an access token, a refresh token and token_type bearer', async () => {
    await using t = await testApp()
    await call(t.app, 'POST', '/auth/signup', { body: { username: 'alice', password } })
    const reply = await call(t.app, 'POST', '/auth/login', { body: { username: 'alice', password } })
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({ access_token: expect.any(String), refresh_token: expect.any(String), token_type: 'bearer' })
    expect(reply.body.access_token).not.toBe(reply.body.refresh_token)
  })

  test('an unknown user and a wrong password get the same status and body', async () => {
    await using t = await testApp()
    await call(t.app, 'POST', '/auth/signup', { body: { username: 'alice', password } })
    const wrong = await call(t.app, 'POST', '/auth/login', { body: { username: 'alice', password: 'not-the-password' } })
    const unknown = await call(t.app, 'POST', '/auth/login', { body: { username: 'nobody', password: 'not-the-password' } })
    expect(wrong.status).toBe(401)
    expect(unknown).toEqual({ ...wrong, headers: unknown.headers })
    expect(unknown.body).toEqual(wrong.body)
  })

  test('the username matches whatever its case', async () => {
    await using t = await testApp()
    await call(t.app, 'POST', '/auth/signup', { body: { username: 'Alice', password } })
    expect((await call(t.app, 'POST', '/auth/login', { body: { username: 'alice', password } })).status).toBe(200)
  })

  test('a malformed stored hash is a failed login, not a 500', async () => {
    await using t = await testApp()
    const { body: user } = await call(t.app, 'POST', '/auth/signup', { body: { username: 'alice', password } })
    sqliteOf(t).sqlite.run("UPDATE users SET password_hash = 'not-a-hash' WHERE id = ?", [user.id])
    const reply = await call(t.app, 'POST', '/auth/login', { body: { username: 'alice', password } })
    expect(reply.status).toBe(401)
    expect(reply.body.error.code).toBe('invalid_credentials')
  })
})

describe('GET /auth/me', () => {
  test('returns the signed-in user', async () => {
    await using t = await testApp()
    const alice = await account(t.app, uniqueName('alice'), 'Alice Smith')
    const reply = await call(t.app, 'GET', '/auth/me', { token: alice.token })
    expect(reply).toMatchObject({ status: 200, body: { id: alice.id, username: alice.username, full_name: 'Alice Smith' } })
  })

  test('without a token is 401', async () => {
    await using t = await testApp()
    const reply = await call(t.app, 'GET', '/auth/me')
    expect(reply.status).toBe(401)
    expect(reply.body.error.code).toBe('missing_token')
  })

  test('refuses a refresh token used as a bearer token', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const reply = await call(t.app, 'GET', '/auth/me', { token: alice.refresh })
    expect(reply.status).toBe(401)
    expect(reply.body.error.code).toBe('invalid_token')
  })

  const forged: Array<[string, (sub: string) => Promise<string> | string]> = [
    ['alg none', (sub) => new UnsecuredJWT({ sub }).setIssuedAt().setExpirationTime('10m').encode()],
    [
      'HS512 with the same secret',
      (sub) => new SignJWT({ sub }).setProtectedHeader({ alg: 'HS512', typ: 'at+jwt' }).setIssuedAt().setExpirationTime('10m').sign(key),
    ],
    ['no exp', (sub) => new SignJWT({ sub }).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' }).setIssuedAt().sign(key)],
    ['no typ', (sub) => new SignJWT({ sub }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('10m').sign(key)],
    [
      'another secret',
      (sub) =>
        new SignJWT({ sub })
          .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
          .setIssuedAt()
          .setExpirationTime('10m')
          .sign(new TextEncoder().encode('x'.repeat(48))),
    ],
    [
      'an expired token',
      (sub) =>
        new SignJWT({ sub })
          .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
          .setIssuedAt(Math.floor(Date.now() / 1000) - 3600)
          .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
          .sign(key),
    ],
    ['garbage', () => 'not.a.jwt'],
  ]
  test.each(forged)('refuses %s', async (_, make) => {
    await using t = await testApp()
    const alice = await account(t.app)
    const reply = await call(t.app, 'GET', '/auth/me', { token: await make(alice.id) })
    expect(reply.status).toBe(401)
  })

  test('accepts a well-formed token made with the same secret (the forgeries above fail for their flaw alone)', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const token = await new SignJWT(sessionClaims(alice.token)).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' }).setSubject(alice.id).setJti('j').setIssuedAt().setExpirationTime('10m').sign(key)
    expect((await call(t.app, 'GET', '/auth/me', { token })).status).toBe(200)
  })

  test('an expired access token says so', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const now = Math.floor(Date.now() / 1000)
    const token = await new SignJWT(sessionClaims(alice.token)).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' }).setSubject(alice.id).setJti('j').setIssuedAt(now - 100).setExpirationTime(now - 10).sign(key)
    const reply = await call(t.app, 'GET', '/auth/me', { token })
    expect(reply.body.error.code).toBe('token_expired')
  })

  test('a token for a deleted account is 401', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    sqliteOf(t).sqlite.run('DELETE FROM users WHERE id = ?', [alice.id])
    expect((await call(t.app, 'GET', '/auth/me', { token: alice.token })).status).toBe(401)
  })
})

describe('POST /auth/refresh', () => {
  test('exchanges a refresh token for a new working pair', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const reply = await call(t.app, 'POST', '/auth/refresh', { body: { refresh_token: alice.refresh } })
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({ access_token: expect.any(String), refresh_token: expect.any(String), token_type: 'bearer' })
    expect(reply.body.refresh_token).not.toBe(alice.refresh)
    expect((await call(t.app, 'GET', '/auth/me', { token: reply.body.access_token })).body.id).toBe(alice.id)
  })

  test('refuses an access token', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const reply = await call(t.app, 'POST', '/auth/refresh', { body: { refresh_token: alice.token } })
    expect(reply.status).toBe(401)
    expect(reply.body.error.code).toBe('invalid_token')
  })

  test('refuses an expired refresh token', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const now = Math.floor(Date.now() / 1000)
    const token = await new SignJWT(sessionClaims(alice.refresh)).setProtectedHeader({ alg: 'HS256', typ: 'rt+jwt' }).setSubject(alice.id).setJti('j').setIssuedAt(now - 100).setExpirationTime(now - 10).sign(key)
    const reply = await call(t.app, 'POST', '/auth/refresh', { body: { refresh_token: token } })
    expect(reply.status).toBe(401)
    expect(reply.body.error.code).toBe('token_expired')
  })

  test('tokens carry the configured lifetimes', async () => {
    await using t = await testApp({ ACCESS_TOKEN_TTL_SECONDS: '120', REFRESH_TOKEN_TTL_SECONDS: '3600' })
    const alice = await account(t.app)
    const claims = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString())
    const access = claims(alice.token)
    const refresh = claims(alice.refresh)
    expect(access.exp - access.iat).toBe(120)
    expect(refresh.exp - refresh.iat).toBe(3600)
  })
})
