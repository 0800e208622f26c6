import { describe, expect, test } from 'bun:test'
import { testApp } from '../support/app'
import { account, call } from '../support/http'

describe('GET /users', () => {
  test('lists everyone but the caller, sorted by username whatever its case, as id, username, full_name, online and last_seen_at only', async () => {
    await using t = await testApp()
    // Created out of order, mixing cases: a byte-wise sort would put "Alice" and "Dave" first.
    const carol = await account(t.app, 'carol')
    const dave = await account(t.app, 'Dave', 'Dave Jones')
    const me = await account(t.app, 'me_myself')
    const alice = await account(t.app, 'Alice', 'Alice Smith')
    const bob = await account(t.app, 'bob')
    const alfred = await account(t.app, 'alfred')

    const reply = await call(t.app, 'GET', '/users', { token: me.token })

    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({
      users: [
        { id: alfred.id, username: 'alfred', full_name: null, online: false, last_seen_at: null },
        { id: alice.id, username: 'Alice', full_name: 'Alice Smith', online: false, last_seen_at: null },
        { id: bob.id, username: 'bob', full_name: null, online: false, last_seen_at: null },
        { id: carol.id, username: 'carol', full_name: null, online: false, last_seen_at: null },
        { id: dave.id, username: 'Dave', full_name: 'Dave Jones', online: false, last_seen_at: null },
      ],
    })
  })

  test('never carries a password hash or any other stored column in the JSON', async () => {
    await using t = await testApp()
    const me = await account(t.app, 'me_myself')
    await account(t.app, 'alice', 'Alice Smith')
    const response = await t.app.handle(new Request('http://localhost/users', { headers: { authorization: `Bearer ${me.token}` } }))
    const text = await response.text()
    expect(response.status).toBe(200)
    expect(text).not.toContain('argon2')
    expect(text).not.toContain('password')
    expect(text).not.toContain('created_at')
    expect(Object.keys(JSON.parse(text).users[0]).sort()).toEqual(['full_name', 'id', 'last_seen_at', 'online', 'username'])
  })

  test('the only user sees an empty list', async () => {
    await using t = await testApp()
    const me = await account(t.app)
    expect(await call(t.app, 'GET', '/users', { token: me.token })).toMatchObject({ status: 200, body: { users: [] } })
  })

  test('without a token is 401 in the error shape', async () => {
    await using t = await testApp()
    await account(t.app)
    const reply = await call(t.app, 'GET', '/users')
    expect(reply.status).toBe(401)
    expect(reply.body).toEqual({ error: { code: 'missing_token', message: expect.any(String) } })
  })

  test('with a garbage token is 401', async () => {
    await using t = await testApp()
    await account(t.app)
    const reply = await call(t.app, 'GET', '/users', { token: 'not.a.jwt' })
    expect(reply.status).toBe(401)
    expect(reply.body.error.code).toBeString()
  })
})
