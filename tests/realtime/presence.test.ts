import { describe, expect, test } from 'bun:test'
import type { ListedUser } from '../../src/users/model'
import { listen, testApp, type TestApp } from '../support/app'
import { account, call, conversation, type Account } from '../support/http'
import { type Frame, TestSocket } from '../support/ws'

// One process: presence is this node's memory. Across processes on Redis: two-nodes-presence.test.ts.

const GRACE_SECONDS = 1
const presenceApp = () => testApp({ PRESENCE_GRACE_SECONDS: String(GRACE_SECONDS) })

/** Sockets that wait for presence frames like any other. */
const watch = (ws: string, who: Account) => TestSocket.open(`${ws}?token=${who.token}`, { presence: true })
const watchPage = (ws: string, who: Account) => TestSocket.open(`${ws}?format=html&token=${who.token}`, { presence: true })
const connect = (ws: string, who: Account) => TestSocket.open(`${ws}?token=${who.token}`)

const presenceOf = (who: Account, online: boolean) => ({ type: 'presence', user_id: who.id, online })
const pagePush = (who: Account, online: boolean) => ({
  type: 'html',
  html: `<hx-partial hx-target="#live" hx-swap="presence"><i data-user="${who.id}" data-online="${online}"></i></hx-partial>`,
})
const nextPresence = (socket: TestSocket, who: Account) => socket.next((f) => f.type === 'presence' && f.user_id === who.id, `presence of ${who.username}`, 10_000)
const nextPagePush = (socket: TestSocket, who: Account) => socket.next((f) => f.type === 'html' && f.html.includes(`data-user="${who.id}"`), `presence push of ${who.username}`, 10_000)

async function listed(t: TestApp, viewer: Account, who: Account) {
  const reply = await call(t.app, 'GET', '/users', { token: viewer.token })
  expect(reply.status).toBe(200)
  return reply.body.users.find((u: ListedUser) => u.id === who.id) as ListedUser
}

describe('presence', () => {
  test("someone's first socket makes them online for everyone who shares a conversation with them: one frame per socket however many they share, nothing for their second socket", async () => {
    await using t = await presenceApp()
    const { ws } = listen(t.app)
    const [alice, bob, carol, eve, dave] = [await account(t.app), await account(t.app), await account(t.app), await account(t.app), await account(t.app)]
    // Bob shares two conversations with Alice, Carol one, Eve none.
    await conversation(t.app, alice, [bob])
    await conversation(t.app, alice, [bob, carol], 'Launch Team')
    await conversation(t.app, dave, [bob])
    using bobPhone = await watch(ws, bob)
    using bobLaptop = await watch(ws, bob)
    using bobPage = await watchPage(ws, bob)
    using carolPhone = await watch(ws, carol)
    using evePhone = await watch(ws, eve)
    expect(await listed(t, bob, alice)).toMatchObject({ online: false, last_seen_at: null })

    using alicePhone = await watch(ws, alice)

    for (const socket of [bobPhone, bobLaptop, carolPhone]) expect(await nextPresence(socket, alice)).toEqual(presenceOf(alice, true))
    expect(await nextPagePush(bobPage, alice)).toEqual(pagePush(alice, true))
    expect(await listed(t, bob, alice)).toEqual({ id: alice.id, username: alice.username, full_name: null, online: true, last_seen_at: null })
    // GET /users lists everyone to everyone, online or not; frames go only to those who share a conversation.
    expect(await listed(t, eve, alice)).toMatchObject({ online: true })

    // Her second socket (a web UI page counts as any socket) changes nothing. Dave coming online
    // after it is the witness: what her second socket could have caused would have come first.
    using _alicePage = await TestSocket.open(`${ws}?format=html&token=${alice.token}`)
    using _davePhone = await connect(ws, dave)
    expect(await nextPresence(bobPhone, dave)).toEqual(presenceOf(dave, true))
    expect(await nextPagePush(bobPage, dave)).toEqual(pagePush(dave, true))
    const aboutAliceOrDave = (f: Frame) => [alice.id, dave.id].includes(f.user_id) || (f.type === 'html' && (f.html.includes(alice.id) || f.html.includes(dave.id)))
    expect(bobPhone.received.filter(aboutAliceOrDave)).toEqual([presenceOf(alice, true), presenceOf(dave, true)])
    expect(bobPage.received.filter(aboutAliceOrDave)).toEqual([pagePush(alice, true), pagePush(dave, true)])
    await nextPresence(bobLaptop, dave)
    expect(bobLaptop.received.filter(aboutAliceOrDave)).toEqual([presenceOf(alice, true), presenceOf(dave, true)])
    for (const socket of [carolPhone, evePhone]) await socket.drain()
    expect(carolPhone.received.filter(aboutAliceOrDave)).toEqual([presenceOf(alice, true)])
    expect(evePhone.received.filter((f) => f.type === 'presence')).toEqual([])
    // Nobody is told of themselves.
    expect(alicePhone.received.filter((f) => f.type === 'presence' && f.user_id === alice.id)).toEqual([])
  })

  test(`a reload within the grace changes nothing; ${GRACE_SECONDS} s after the last socket closed they are offline, last seen when it closed, until they come back`, async () => {
    await using t = await presenceApp()
    const { ws } = listen(t.app)
    const [alice, bob] = [await account(t.app), await account(t.app)]
    await conversation(t.app, alice, [bob])
    using bobPhone = await watch(ws, bob)
    using bobPage = await watchPage(ws, bob)
    const first = await connect(ws, alice)
    expect(await nextPresence(bobPhone, alice)).toEqual(presenceOf(alice, true))
    expect(await nextPagePush(bobPage, alice)).toEqual(pagePush(alice, true))

    // A reload: the page's socket closes and the new page's opens at once.
    first.close()
    await first.closed
    const reloaded = await connect(ws, alice)
    expect(await listed(t, bob, alice)).toMatchObject({ online: true })

    const before = Date.now()
    reloaded.close()
    await reloaded.closed
    expect(await nextPresence(bobPhone, alice)).toEqual(presenceOf(alice, false))
    const after = Date.now()
    expect(after - before).toBeGreaterThanOrEqual(GRACE_SECONDS * 1000)
    expect(await nextPagePush(bobPage, alice)).toEqual(pagePush(alice, false))
    // The reload sent nothing: online once, offline once.
    expect(bobPhone.received.filter((f) => f.type === 'presence')).toEqual([presenceOf(alice, true), presenceOf(alice, false)])
    expect(bobPage.received.filter((f) => f.type === 'html')).toEqual([pagePush(alice, true), pagePush(alice, false)])

    const seen = await listed(t, bob, alice)
    expect(seen.online).toBe(false)
    const lastSeen = Date.parse(seen.last_seen_at!)
    expect(lastSeen).toBeGreaterThanOrEqual(before)
    expect(lastSeen).toBeLessThanOrEqual(after - GRACE_SECONDS * 1000)
    expect(await t.sql('SELECT last_seen_at FROM users WHERE id = ?', alice.id)).toEqual([{ last_seen_at: lastSeen }])

    // Back: online again, and still last seen when she left.
    using _back = await connect(ws, alice)
    expect(await nextPresence(bobPhone, alice)).toEqual(presenceOf(alice, true))
    expect(await listed(t, bob, alice)).toMatchObject({ online: true, last_seen_at: seen.last_seen_at })
  })

  test('someone who shares no conversation is told to no one, but GET /users says it', async () => {
    await using t = await presenceApp()
    const { ws } = listen(t.app)
    const [loner, bob, witness] = [await account(t.app), await account(t.app), await account(t.app)]
    await conversation(t.app, witness, [bob])
    using bobPhone = await watch(ws, bob)
    const lonerSocket = await connect(ws, loner)
    const witnessSocket = await connect(ws, witness)
    expect(await nextPresence(bobPhone, witness)).toEqual(presenceOf(witness, true))
    expect(await listed(t, bob, loner)).toMatchObject({ online: true })

    // The loner leaves first, then the witness: once the witness is offline, so is the loner.
    lonerSocket.close()
    await lonerSocket.closed
    witnessSocket.close()
    await witnessSocket.closed
    expect(await nextPresence(bobPhone, witness)).toEqual(presenceOf(witness, false))
    expect(await listed(t, bob, loner)).toMatchObject({ online: false, last_seen_at: expect.any(String) })
    expect(bobPhone.received.filter((f) => f.type === 'presence' && f.user_id === loner.id)).toEqual([])
  })
})
