import { describe, expect, setSystemTime, test } from 'bun:test'
import { connect as tcpConnect } from 'node:net'
import { SignJWT } from 'jose'
import { ACCESS_COOKIE, REFRESH_COOKIE } from '../../src/auth/credentials'
import * as conversations from '../../src/conversations/service'
import * as users from '../../src/users/service'
import { listen, TEST_SECRET, testApp, type TestApp } from '../support/app'
import { FormClient, signedInBrowser as person } from '../support/form-client'
import { call } from '../support/http'

const messageCount = async (t: TestApp) => (await t.sql<{ n: number }>('SELECT count(*) AS n FROM messages'))[0]!.n
const conversationCount = async (t: TestApp) => (await t.sql<{ n: number }>('SELECT count(*) AS n FROM conversations'))[0]!.n


/** The value of the message_id field in a composer form. */
const composerMessageId = (page: string) => page.match(/name="message_id" value="([^"]+)"/)?.[1]

describe('GET /', () => {
  test('signed out, shows the Login tab with its labelled fields and button', async () => {
    await using t = await testApp()
    const reply = await new FormClient(t.app).get('/')
    expect(reply.status).toBe(200)
    expect(reply.headers.get('content-type')).toBe('text/html; charset=utf-8')
    for (const text of ['>Login</a>', '>Sign Up</a>', '<label for="username">Username</label>', '<label for="password">Password</label>', '<button type="submit">Login</button>']) {
      expect(reply.body).toContain(text)
    }
  })

  test('the Sign Up tab has Username, Password, optional Full Name and Create Account', async () => {
    await using t = await testApp()
    const reply = await new FormClient(t.app).get('/?tab=signup')
    expect(reply.body).toContain('<label for="full_name">Full Name <span class="optional">(optional)</span></label>')
    expect(reply.body).toContain('<button type="submit">Create Account</button>')
  })

  test('every page carries a CSP without unsafe-inline or unsafe-eval, nosniff, a Referrer-Policy and frame-ancestors none', async () => {
    await using t = await testApp()
    const { client } = await person(t)
    for (const path of ['/', '/?tab=signup']) {
      const reply = await (path === '/' ? client : new FormClient(t.app)).get(path)
      const csp = reply.headers.get('content-security-policy')!
      expect(csp).toContain("frame-ancestors 'none'")
      expect(csp).toContain("script-src 'self'")
      expect(csp).not.toContain('unsafe-inline')
      expect(csp).not.toContain('unsafe-eval')
      expect(reply.headers.get('x-content-type-options')).toBe('nosniff')
      expect(reply.headers.get('referrer-policy')).toBe('same-origin')
    }
  })

  test("the page's own style carries the nonce its CSP names, and a new nonce each time", async () => {
    await using t = await testApp()
    const { client } = await person(t)
    const first = await client.get('/')
    const second = await client.get('/')
    const nonce = (r: { headers: Headers }) => r.headers.get('content-security-policy')!.match(/'nonce-([^']+)'/)![1]!
    expect(first.body).toContain(`<style nonce="${nonce(first)}">`)
    expect(nonce(first)).not.toBe(nonce(second))
  })

  test('API responses carry the same protective headers', async () => {
    await using t = await testApp()
    const reply = await call(t.app, 'GET', '/health')
    expect(reply.headers.get('x-content-type-options')).toBe('nosniff')
    expect(reply.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'")
  })
})

describe('sign-up and login', () => {
  test('signing up logs in with HttpOnly, SameSite=Lax cookies that are not Secure over plain HTTP', async () => {
    await using t = await testApp()
    const client = new FormClient(t.app)
    const reply = await client.signUp('alice', 'Alice Smith')
    expect(reply.status).toBe(303)
    expect(reply.location).toBe('/')
    const cookies = reply.headers.getSetCookie()
    for (const name of [ACCESS_COOKIE, REFRESH_COOKIE]) {
      const line = cookies.find((c) => c.startsWith(`${name}=`))!
      expect(line).toContain('HttpOnly')
      expect(line).toContain('SameSite=Lax')
      expect(line).toContain('Path=/')
      expect(line).not.toContain('Secure')
    }
    const page = await client.get('/')
    expect(page.body).toContain('<span class="me">Alice Smith</span>')
    expect(page.body).toContain('<button type="submit" class="link">Logout</button>')
  })

  test('over HTTPS the session cookies are Secure', async () => {
    await using t = await testApp()
    const reply = await new FormClient(t.app, 'https://chat.example').signUp('alice')
    expect(reply.headers.getSetCookie().every((c) => c.includes('Secure'))).toBe(true)
  })

  test('a taken username shows the error on the Sign Up form, keeping what was typed', async () => {
    await using t = await testApp()
    await new FormClient(t.app).signUp('alice')
    const reply = await new FormClient(t.app).signUp('ALICE', 'Second Alice')
    expect(reply.status).toBe(409)
    expect(reply.body).toContain('role="alert">Username &quot;ALICE&quot; is already taken</p>')
    expect(reply.body).toContain('value="Second Alice"')
    expect(reply.headers.getSetCookie()).toEqual([])
  })

  test('a full name with a right-to-left override is refused on the form, by the same rule as the API', async () => {
    await using t = await testApp()
    const client = new FormClient(t.app)
    const reply = await client.post('/ui/signup', { username: 'alice', password: 'correct horse battery', full_name: 'Alice \u202Ehtims' })
    expect(reply.status).toBe(422)
    expect(reply.body).toContain('<p class="form-error" role="alert">')
    expect(reply.headers.getSetCookie()).toEqual([])
    expect((await t.sql('SELECT count(*) AS n FROM users'))[0]).toEqual({ n: 0 })
  })

  test('a too-short password is refused on the form', async () => {
    await using t = await testApp()
    const reply = await new FormClient(t.app).post('/ui/signup', { username: 'alice', password: 'short', full_name: '' })
    expect(reply.status).toBe(422)
    expect(reply.body).toContain('Password must be 8–256 characters')
  })

  test('logging in with the right password starts a session; a wrong one says so without one', async () => {
    await using t = await testApp()
    await new FormClient(t.app).signUp('alice')
    const wrong = new FormClient(t.app)
    const refused = await wrong.post('/ui/login', { username: 'alice', password: 'not the password' })
    expect(refused.status).toBe(401)
    expect(refused.body).toContain('Invalid username or password')
    expect(wrong.cookies.size).toBe(0)
    const right = new FormClient(t.app)
    expect((await right.post('/ui/login', { username: 'alice', password: 'correct horse battery' })).status).toBe(303)
    expect((await right.get('/')).body).toContain('Logout')
  })

  test('logout clears both cookies, and pages then go to sign-in', async () => {
    await using t = await testApp()
    const { client } = await person(t)
    const reply = await client.post('/ui/logout', {})
    expect(reply.status).toBe(303)
    expect(reply.headers.getSetCookie().filter((c) => /Max-Age=0/.test(c))).toHaveLength(2)
    expect(client.cookies.size).toBe(0)
    expect((await client.get('/')).body).toContain('>Sign Up</a>')
    expect((await client.get('/c/anything')).location).toBe('/')
  })

  test('an expired access cookie is renewed silently from the refresh cookie', async () => {
    await using t = await testApp()
    const { client, id } = await person(t, 'Alice Smith')
    const now = Math.floor(Date.now() / 1000)
    const expired = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
      .setSubject(id)
      .setIssuedAt(now - 100)
      .setExpirationTime(now - 10)
      .sign(new TextEncoder().encode(TEST_SECRET))
    client.cookies.set(ACCESS_COOKIE, expired)
    const reply = await client.get('/')
    expect(reply.body).toContain('<span class="me">Alice Smith</span>')
    expect(client.cookies.get(ACCESS_COOKIE)).not.toBe(expired)
  })

  test('without a usable refresh cookie, an expired session is signed out', async () => {
    await using t = await testApp()
    const { client } = await person(t)
    client.cookies.set(ACCESS_COOKIE, 'garbage')
    client.cookies.set(REFRESH_COOKIE, 'garbage')
    expect((await client.get('/')).body).toContain('>Sign Up</a>')
  })
})

describe('CSRF: cookie-authenticated posts come from our own pages', () => {
  test.each([
    ['a cross-site Sec-Fetch-Site', { 'sec-fetch-site': 'cross-site' }],
    ['a same-site (other subdomain) Sec-Fetch-Site', { 'sec-fetch-site': 'same-site' }],
    ['a foreign Origin and no Sec-Fetch-Site', { 'sec-fetch-site': '', origin: 'https://evil.example' }],
    ['neither header', { 'sec-fetch-site': '' }],
  ])('a send with %s is refused with 403 and stores nothing', async (_, headers) => {
    await using t = await testApp()
    const alice = await person(t)
    const bob = await person(t)
    const opened = await alice.client.post('/ui/direct', { user_id: bob.id })
    const conversationId = opened.location!.split('/').pop()!
    const reply = await alice.client.request('POST', `/c/${conversationId}/messages`, { form: { message_id: 'csrf-1', content: 'forged' }, headers })
    expect(reply.status).toBe(403)
    expect(await messageCount(t)).toBe(0)
  })

  test('a same-origin Origin without Sec-Fetch-Site (an older browser) is accepted', async () => {
    await using t = await testApp()
    const reply = await new FormClient(t.app).request('POST', '/ui/signup', {
      form: { username: 'alice', password: 'correct horse battery' },
      headers: { 'sec-fetch-site': '', origin: 'http://localhost' },
    })
    expect(reply.status).toBe(303)
  })

  test('login is protected too (no login CSRF)', async () => {
    await using t = await testApp()
    await new FormClient(t.app).signUp('alice')
    const reply = await new FormClient(t.app).post('/ui/login', { username: 'alice', password: 'correct horse battery' }, { 'sec-fetch-site': 'cross-site' })
    expect(reply.status).toBe(403)
    expect(reply.headers.getSetCookie()).toEqual([])
  })
})

describe('conversations in the UI', () => {
  test('clicking a user opens the 1-on-1, the same one every time and from either side', async () => {
    await using t = await testApp()
    const alice = await person(t, 'Alice Smith')
    const bob = await person(t, 'Bob Builder')
    const first = await alice.client.post('/ui/direct', { user_id: bob.id })
    expect(first.status).toBe(303)
    expect(first.location).toMatch(/^\/c\/[0-9a-f-]{36}$/)
    expect((await alice.client.post('/ui/direct', { user_id: bob.id })).location).toBe(first.location)
    expect((await bob.client.post('/ui/direct', { user_id: alice.id })).location).toBe(first.location)
    expect(await conversationCount(t)).toBe(1)
    const page = await bob.client.get(first.location!)
    expect(page.body).toContain(`<h2><bdi>Alice Smith</bdi> <span class="username">@${alice.username}</span></h2>`)
  })

  test('a group is created from comma-separated usernames, the creator included', async () => {
    await using t = await testApp()
    const alice = await person(t)
    const bob = await person(t)
    const carol = await person(t)
    const reply = await alice.client.post('/ui/groups', { title: 'Launch Team', usernames: ` ${bob.username},${carol.username.toUpperCase()} , ` })
    expect(reply.status).toBe(303)
    const page = await carol.client.get(reply.location!)
    expect(page.body).toContain('<h2><span class="group-icon" aria-label="Group">👥</span> Launch Team</h2>')
    expect(page.body).toContain('3 members')
  })

  test('an unknown username is an inline error on the open group form, keeping what was typed', async () => {
    await using t = await testApp()
    const alice = await person(t)
    const bob = await person(t)
    const reply = await alice.client.post('/ui/groups', { title: 'Team', usernames: `${bob.username}, nobody_here` })
    expect(reply.status).toBe(422)
    expect(reply.body).toContain('<details class="new-group" open>')
    expect(reply.body).toContain('role="alert">Participants include an unknown user: &quot;nobody_here&quot;</p>')
    expect(reply.body).toContain(`value="${bob.username}, nobody_here"`)
    expect(await conversationCount(t)).toBe(0)
  })

  test('a group without a name is an inline error', async () => {
    await using t = await testApp()
    const alice = await person(t)
    const bob = await person(t)
    const reply = await alice.client.post('/ui/groups', { title: '  ', usernames: bob.username })
    expect(reply.status).toBe(422)
    expect(reply.body).toContain('role="alert">Group name must not be blank</p>')
    expect(await conversationCount(t)).toBe(0)
  })

  test("a conversation the user is not in is a 403 page, not someone else's messages", async () => {
    await using t = await testApp()
    const alice = await person(t)
    const bob = await person(t)
    const eve = await person(t)
    const { location } = await alice.client.post('/ui/direct', { user_id: bob.id })
    const reply = await eve.client.get(location!)
    expect(reply.status).toBe(403)
    expect(reply.body).toContain('You are not a member of this conversation')
  })

  test('signed out, a conversation page redirects to sign-in and a fragment asks htmx to', async () => {
    await using t = await testApp()
    const client = new FormClient(t.app)
    expect((await client.get('/c/x')).location).toBe('/')
    const fragment = await client.get('/c/x/messages?after=0', { 'hx-request': 'true' })
    expect(fragment.status).toBe(401)
    expect(fragment.headers.get('hx-redirect')).toBe('/')
  })
})

describe('the Conversations list in pages', () => {
  /** Alice in `count` groups with Bob, created a second apart: ids newest first. */
  async function manyGroups(t: TestApp, count: number) {
    const alice = await person(t)
    const bob = await person(t)
    const me = (await users.byId(t.deps.store, alice.id))!
    const start = Date.now()
    const ids: string[] = []
    try {
      for (let i = 0; i < count; i++) {
        setSystemTime(start - (count - i) * 1_000)
        ids.push((await conversations.create(t.deps, me, { title: `group ${i}`, member_ids: [bob.id], is_group: true })).conversation.id)
      }
    } finally {
      setSystemTime()
    }
    return { alice, newestFirst: ids.toReversed() }
  }

  const rowIds = (markup: string) => [...markup.matchAll(/<li id="conv-([^"]+)" class="conversation"/g)].map((m) => m[1]!)
  const cursorIn = (markup: string) => markup.match(/hx-get="\/ui\/sidebar\?cursor=([A-Za-z0-9_-]+)"/)?.[1]

  test('the page shows the first 50 and a Load more control, a link to the next page without JavaScript', async () => {
    await using t = await testApp()
    const { alice, newestFirst } = await manyGroups(t, 53)
    const page = (await alice.client.get('/')).body
    expect(rowIds(page)).toEqual(newestFirst.slice(0, 50))
    const cursor = cursorIn(page)!
    expect(page).toContain(`<a class="load-more" href="/?cursor=${cursor}" hx-get="/ui/sidebar?cursor=${cursor}" hx-swap="none">Load more conversations</a>`)
    // Without JavaScript the link is a page whose sidebar lists the rest, and has no Load more.
    const next = await alice.client.get(`/?cursor=${cursor}`)
    expect(next.status).toBe(200)
    expect(rowIds(next.body)).toEqual(newestFirst.slice(50))
    expect(next.body).toContain('<div id="load-more-conversations"></div>')
  })

  test('Load more appends the next page to the list and replaces itself; the last page leaves it empty', async () => {
    await using t = await testApp()
    const { alice, newestFirst } = await manyGroups(t, 53)
    const cursor = cursorIn((await alice.client.get('/')).body)!
    const more = await alice.client.get(`/ui/sidebar?cursor=${cursor}`, { 'hx-request': 'true' })
    expect(more.status).toBe(200)
    expect(more.body).toStartWith('<hx-partial hx-target="#conversation-list" hx-swap="beforeend">')
    expect(rowIds(more.body)).toEqual(newestFirst.slice(50))
    expect(more.body).toContain('<div id="load-more-conversations" hx-swap-oob="outerHTML"></div>')
  })

  test('the sidebar without a cursor (the refetch after a reconnect) replaces the list with the first page and resets Load more', async () => {
    await using t = await testApp()
    const { alice, newestFirst } = await manyGroups(t, 53)
    const first = await alice.client.get('/ui/sidebar', { 'hx-request': 'true' })
    expect(first.body).toStartWith('<hx-partial hx-target="#conversation-list" hx-swap="innerHTML">')
    expect(rowIds(first.body)).toEqual(newestFirst.slice(0, 50))
    expect(first.body).toContain('<div id="load-more-conversations" hx-swap-oob="outerHTML">')
    expect(cursorIn(first.body)).toBe(cursorIn((await alice.client.get('/')).body)!)
  })

  test('fewer than a page: no Load more', async () => {
    await using t = await testApp()
    const { alice, newestFirst } = await manyGroups(t, 3)
    const page = (await alice.client.get('/')).body
    expect(rowIds(page)).toEqual(newestFirst)
    expect(page).toContain('<div id="load-more-conversations"></div>')
    expect(page).not.toContain('Load more conversations')
  })

  test('a malformed cursor is 422, as a page and as a fragment, never a 500', async () => {
    await using t = await testApp()
    const { alice } = await manyGroups(t, 1)
    const page = await alice.client.get('/?cursor=not-a-cursor')
    expect(page.status).toBe(422)
    expect(page.body).toContain('role="alert">cursor')
    expect((await alice.client.get('/ui/sidebar?cursor=%2B%2B', { 'hx-request': 'true' })).status).toBe(422)
  })
})

describe('sending from the UI', () => {
  async function openDirect(t: TestApp) {
    const alice = await person(t, 'Alice Smith')
    const bob = await person(t, 'Bob Builder')
    const { location } = await alice.client.post('/ui/direct', { user_id: bob.id })
    return { alice, bob, path: location! }
  }

  test('the composer carries a message_id, and posting it twice (a double click) stores one message', async () => {
    await using t = await testApp()
    const { alice, path } = await openDirect(t)
    const messageId = composerMessageId((await alice.client.get(path)).body)!
    expect(messageId).toMatch(/^[0-9a-f-]{36}$/)
    const first = await alice.client.request('POST', `${path}/messages`, { form: { message_id: messageId, content: 'once' }, headers: { 'hx-request': 'true' } })
    const second = await alice.client.request('POST', `${path}/messages`, { form: { message_id: messageId, content: 'once' }, headers: { 'hx-request': 'true' } })
    expect([first.status, second.status]).toEqual([200, 200])
    expect(await messageCount(t)).toBe(1)
    // The reply merges the message by id and seq, and replaces the composer with a new message_id.
    expect(first.body).toContain('<hx-partial hx-target="#messages-')
    expect(first.body).toContain('hx-swap="merge">')
    expect(first.body).toContain('<p class="content">once</p>')
    expect(composerMessageId(first.body)).not.toBe(messageId)
    expect(first.body).toContain('hx-swap-oob="outerHTML"')
  })

  test('without htmx, a send redirects back to the conversation, which shows the message', async () => {
    await using t = await testApp()
    const { alice, path } = await openDirect(t)
    const reply = await alice.client.post(`${path}/messages`, { message_id: 'plain-form-1', content: 'no js here' })
    expect(reply.status).toBe(303)
    expect(reply.location).toBe(path)
    expect((await alice.client.get(path)).body).toContain('<p class="content">no js here</p>')
  })

  test('an empty message keeps the composer, its message_id and an inline error', async () => {
    await using t = await testApp()
    const { alice, path } = await openDirect(t)
    const reply = await alice.client.request('POST', `${path}/messages`, { form: { message_id: 'keep-me', content: '   ' }, headers: { 'hx-request': 'true' } })
    expect(reply.status).toBe(422)
    expect(reply.body).toContain('role="alert">Message must not be empty or only whitespace</p>')
    expect(composerMessageId(reply.body)).toBe('keep-me')
    expect(await messageCount(t)).toBe(0)
  })

  test('the page shows the newest 50 with "Load older", which pages back by seq', async () => {
    await using t = await testApp()
    const { alice, path } = await openDirect(t)
    for (let i = 1; i <= 55; i++) await alice.client.post(`${path}/messages`, { message_id: `m-${i}`, content: `message ${i}` })
    const page = (await alice.client.get(path)).body
    expect(page.match(/class="message"/g)).toHaveLength(50)
    expect(page).toContain('data-seq="6"')
    expect(page).not.toContain('data-seq="5"')
    expect(page).toContain(`hx-get="${path}/messages?before=6"`)
    const older = (await alice.client.get(`${path}/messages?before=6`, { 'hx-request': 'true' })).body
    expect(older.match(/class="message"/g)).toHaveLength(5)
    expect(older).toContain('<div id="load-older" hx-swap-oob="outerHTML"></div>')
  })

  test('catching up with after=<seq> returns only the newer messages', async () => {
    await using t = await testApp()
    const { alice, path } = await openDirect(t)
    for (let i = 1; i <= 3; i++) await alice.client.post(`${path}/messages`, { message_id: `c-${i}`, content: `catch ${i}` })
    const reply = (await alice.client.get(`${path}/messages?after=1`, { 'hx-request': 'true' })).body
    expect(reply).not.toContain('catch 1<')
    expect(reply).toContain('catch 2<')
    expect(reply).toContain('catch 3<')
  })

  test('a bad cursor is a clear error, never a 500', async () => {
    await using t = await testApp()
    const { alice, path } = await openDirect(t)
    const reply = await alice.client.get(`${path}/messages?after=abc`, { 'hx-request': 'true' })
    expect(reply.status).toBe(422)
  })
})

/**
 * What HEAD must repeat of a GET: every header but those that differ between any two requests
 * (the request id, the CSP's nonce, the tokens in renewed cookies) and the length, which a GET
 * through app.handle leaves to the socket.
 */
function comparable(reply: { status: number; headers: Headers; location: string | null }) {
  const headers: Record<string, string> = {}
  reply.headers.forEach((value, name) => {
    if (!['x-request-id', 'set-cookie', 'content-length', 'date'].includes(name)) headers[name] = value.replace(/'nonce-[^']+'/, "'nonce'")
  })
  const cookies = reply.headers.getSetCookie().map((line) => line.replace(/=[^;]*/, '=…'))
  return { status: reply.status, headers, cookies }
}

describe('HEAD: answered as GET is, without a body', () => {
  // What a monitor or `curl -I` sends: no Sec-Fetch-Site, no Origin. A HEAD changes nothing, so
  // it is not a cross-site request to refuse.
  const bare = { 'sec-fetch-site': '' }

  test('signed out: the sign-in page, a static file, and the redirects and 401s of pages and fragments that need a session', async () => {
    await using t = await testApp()
    const client = new FormClient(t.app)
    for (const [path, headers] of [['/', bare], ['/?tab=signup', bare], ['/c/x', bare], ['/ui/sidebar', { ...bare, 'hx-request': 'true' }], ['/c/x/messages', { ...bare, 'hx-request': 'true' }], ['/static/app.js', bare]] as const) {
      const get = await client.request('GET', path, { headers })
      const head = await client.request('HEAD', path, { headers })
      expect(comparable(head)).toEqual(comparable(get))
      expect(head.body).toBe('')
    }
    const signIn = await client.request('HEAD', '/', { headers: bare })
    expect(signIn.status).toBe(200)
    expect(signIn.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(signIn.headers.get('content-length')).toBe(String(Buffer.byteLength((await client.request('GET', '/', { headers: bare })).body)))
  })

  test('signed in: the chat page, a conversation page, its messages fragment, the sidebar and a 403 page', async () => {
    await using t = await testApp()
    const alice = await person(t, 'Alice Smith')
    const bob = await person(t, 'Bob Builder')
    const eve = await person(t)
    const { location } = await alice.client.post('/ui/direct', { user_id: bob.id })
    await alice.client.post(`${location}/messages`, { message_id: 'head-1', content: 'hello' })
    const cases = [
      [alice.client, '/', 200],
      [alice.client, location!, 200],
      [alice.client, `${location}/messages?after=0`, 200],
      [alice.client, '/ui/sidebar', 200],
      [eve.client, location!, 403],
    ] as const
    for (const [client, path, status] of cases) {
      const get = await client.request('GET', path, { headers: bare })
      const head = await client.request('HEAD', path, { headers: bare })
      expect(head.status).toBe(status)
      expect(comparable(head)).toEqual(comparable(get))
      expect(head.body).toBe('')
      expect(head.headers.get('content-length')).toBe(String(Buffer.byteLength(get.body)))
    }
  })

  test('an expired session is renewed by a HEAD as by a GET, with both new cookies', async () => {
    await using t = await testApp()
    const { client } = await person(t)
    client.cookies.delete(ACCESS_COOKIE)
    const refresh = client.cookies.get(REFRESH_COOKIE)
    const head = await client.request('HEAD', '/', { headers: bare })
    expect(head.status).toBe(200)
    expect(head.headers.getSetCookie().map((line) => line.split('=')[0]).sort()).toEqual([ACCESS_COOKIE, REFRESH_COOKIE].sort())
    expect(client.cookies.get(REFRESH_COOKIE)).not.toBe(refresh)
    // The renewed session is the signed-in one: the next page is the chat, not the sign-in form.
    expect((await client.get('/')).body).toContain('Logout')
  })

  test('a HEAD from another site is answered too: it reads nothing a GET would not, and changes nothing', async () => {
    await using t = await testApp()
    const { client } = await person(t)
    const head = await client.request('HEAD', '/', { headers: { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' } })
    expect(head.status).toBe(200)
  })

  test('over a real socket: the same status and headers as GET, and not a byte of body on the wire', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const { client } = await person(t)
    const cookie = [...client.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
    for (const [path, headers] of [['/', {}], ['/', { cookie }], ['/ui/sidebar', { cookie }]] as const) {
      const get = await fetch(http + path, { headers, redirect: 'manual' })
      const getBody = await get.text()
      const head = await rawRequest(http, 'HEAD', path, headers)
      expect(head.status).toBe(get.status)
      expect(head.headers['content-type']).toBe(get.headers.get('content-type')!)
      expect(head.headers['cache-control']).toBe(get.headers.get('cache-control')!)
      expect(head.headers['content-length']).toBe(String(Buffer.byteLength(getBody)))
      expect(head.afterHead).toBe('')
    }
  })
})

/** One request over raw TCP with Connection: close; everything the server sent after the head is kept. */
async function rawRequest(http: string, method: string, path: string, headers: Record<string, string>) {
  const { hostname, port, host } = new URL(http)
  const socket = tcpConnect(Number(port), hostname)
  let received = ''
  socket.on('data', (data) => (received += String(data)))
  const closed = new Promise<void>((resolve, reject) => {
    socket.on('close', () => resolve())
    socket.on('error', reject)
  })
  socket.write(`${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n${Object.entries(headers).map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`)
  await closed
  const end = received.indexOf('\r\n\r\n')
  const [statusLine, ...lines] = received.slice(0, end).split('\r\n')
  return {
    status: Number(statusLine!.split(' ')[1]),
    headers: Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()])),
    afterHead: received.slice(end + 4),
  }
}

describe('static files', () => {
  test('serves the vendored htmx and the app files, with long caching for versioned ones', async () => {
    await using t = await testApp()
    const client = new FormClient(t.app)
    const htmx = await client.get('/static/vendor/htmx-4.0.1/htmx.min.js')
    expect(htmx.status).toBe(200)
    expect(htmx.body).toContain('4.0.1')
    expect(htmx.headers.get('cache-control')).toContain('immutable')
    expect((await client.get('/static/app.js')).headers.get('cache-control')).toBe('no-cache')
    expect((await client.get('/static/app.css')).status).toBe(200)
  })

  test.each(['/static/../package.json', '/static/%2e%2e/package.json', '/static/vendor/htmx-4.0.1/SHA256SUMS', '/static/.env'])('%s is not served', async (path) => {
    await using t = await testApp()
    expect((await new FormClient(t.app).get(path)).status).toBe(404)
  })
})
