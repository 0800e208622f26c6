import { describe, expect, test } from 'bun:test'
import { SignJWT } from 'jose'
import { ACCESS_COOKIE, REFRESH_COOKIE } from '../../src/auth/credentials'
import { listen, TEST_SECRET, testApp } from '../support/app'
import { account, conversation, send, uniqueName } from '../support/http'
import { attemptUpgrade, TestSocket } from '../support/ws'

const htmlSocket = (ws: string, token: string) => TestSocket.open(`${ws}?format=html&token=${token}`)

describe('/ws?format=html (the web UI)', () => {
  test("each member's pages get the push rendered for them: a 1-on-1 is named after the other person", async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app, uniqueName('alice'), 'Alice Smith')
    const bob = await account(t.app, uniqueName('bob'), 'Bob Builder')
    const direct = await conversation(t.app, alice, [bob])
    using alicePage = await htmlSocket(ws, alice.token)
    using bobPage = await htmlSocket(ws, bob.token)
    const sent = await send(t.app, alice, direct.id, 'hi <b>bob</b>')
    const toBob = (await bobPage.nextOfType('html')).html as string
    const toAlice = (await alicePage.nextOfType('html')).html as string
    expect(toBob).toContain('<span class="conversation-name">Alice Smith</span>')
    expect(toAlice).toContain('<span class="conversation-name">Bob Builder</span>')
    for (const push of [toBob, toAlice]) {
      expect(push).toContain(`<li id="msg-${sent.body.id}" class="message" data-seq="1" data-sender="${alice.id}" data-version="1" tabindex="0">`)
      expect(push).toContain('<p class="content">hi &lt;b&gt;bob&lt;/b&gt;</p>')
    }
    expect(await bobPage.drain()).toEqual([])
  })

  test('UI sockets get no JSON message frames, API sockets no HTML, and outsiders nothing', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const eve = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    using bobPage = await htmlSocket(ws, bob.token)
    using bobApi = await TestSocket.open(`${ws}?token=${bob.token}`)
    using evePage = await htmlSocket(ws, eve.token)
    await send(t.app, alice, direct.id, 'only for members')
    await bobPage.nextOfType('html')
    await bobApi.nextMessage()
    expect(await bobPage.drain()).toEqual([])
    expect(await bobApi.drain()).toEqual([])
    expect(await evePage.drain()).toEqual([])
  })

  test('a conversation created while the page is open reaches it with its first message, no join needed', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const carol = await account(t.app)
    using carolPage = await htmlSocket(ws, carol.token)
    const team = await conversation(t.app, alice, [bob, carol], 'Launch Team')
    expect(await carolPage.drain()).toEqual([])
    await send(t.app, alice, team.id, 'kick-off')
    const push = (await carolPage.nextOfType('html')).html as string
    expect(push).toContain('👥</span> Launch Team')
    expect(push).toContain('3 members')
  })

  test('the session cookie works from our own page, and an expired access cookie is renewed from the refresh cookie', async () => {
    await using t = await testApp()
    const { http, ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    const now = Math.floor(Date.now() / 1000)
    const expired = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
      .setSubject(bob.id)
      .setIssuedAt(now - 100)
      .setExpirationTime(now - 10)
      .sign(new TextEncoder().encode(TEST_SECRET))
    using bobPage = await TestSocket.open(`${ws}?format=html`, { headers: { origin: http, cookie: `${ACCESS_COOKIE}=${expired}; ${REFRESH_COOKIE}=${bob.refresh}` } })
    expect(bobPage.received[0]).toEqual({ type: 'ready', user_id: bob.id })
    await send(t.app, alice, direct.id, 'still here')
    expect((await bobPage.nextOfType('html')).html).toContain('still here')
  })
})

describe('ALLOWED_ORIGINS', () => {
  test('a cookie-authenticated upgrade from a listed origin is accepted; one from any other origin gets 403', async () => {
    await using t = await testApp({ ALLOWED_ORIGINS: 'https://chat.example.com' })
    const { http, ws } = listen(t.app)
    const alice = await account(t.app)
    const cookie = `${ACCESS_COOKIE}=${alice.token}`
    using listed = await TestSocket.open(`${ws}?format=html`, { headers: { origin: 'https://chat.example.com', cookie } })
    expect(listed.received[0]).toEqual({ type: 'ready', user_id: alice.id })
    using own = await TestSocket.open(`${ws}?format=html`, { headers: { origin: http, cookie } })
    expect(own.received[0]).toEqual({ type: 'ready', user_id: alice.id })
    const other = await attemptUpgrade(`${http}/ws?format=html`, { origin: 'https://evil.example', cookie })
    expect(other.status).toBe(403)
  })
})

describe('a sender who copied another member\'s full name', () => {
  test('is shown with their own @username in the live push, as the real one is with theirs', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const real = await account(t.app, uniqueName('alice'), 'Alice Smith')
    const impostor = await account(t.app, uniqueName('mallory'), 'Alice Smith')
    const bob = await account(t.app)
    const team = await conversation(t.app, real, [impostor, bob], 'Team')
    using bobPage = await htmlSocket(ws, bob.token)
    await send(t.app, impostor, team.id, 'wire the money')
    expect((await bobPage.nextOfType('html')).html).toContain(`<span class="sender"><bdi>Alice Smith</bdi> <span class="username">@${impostor.username}</span></span>`)
    await send(t.app, real, team.id, 'no, do not')
    expect((await bobPage.nextOfType('html')).html).toContain(`<span class="sender"><bdi>Alice Smith</bdi> <span class="username">@${real.username}</span></span>`)
  })
})
