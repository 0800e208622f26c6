import { describe, expect, test } from 'bun:test'
import { decodeJwt } from 'jose'
import { ACCESS_COOKIE, REFRESH_COOKIE } from '../../src/auth/credentials'
import { createTokens } from '../../src/auth/tokens'
import { ERROR_LINES_PER_MINUTE } from '../../src/realtime/protocol'
import { captureLogs, listen, TEST_SECRET, testApp, type TestApp } from '../support/app'
import { account, call, conversation, type Account } from '../support/http'
import { RawSocket, TestSocket, type Frame } from '../support/ws'

// What one client may cost the server: protocol pings, log lines, sockets, a socket's lifetime,
// and what is buffered for readers that stop reading. Each test performs the attack.
// (testApp turns WS_FRAME_LIMIT_PER_MINUTE off, as the adversarial review did.)

const connect = (wsUrl: string, who: Account) => TestSocket.open(`${wsUrl}?token=${who.token}`)

/** A socket that is refused after its upgrade: the frames it got, and how it was closed. */
async function refusedSocket(url: string): Promise<{ frames: Frame[]; code: number; reason: string }> {
  const socket = new WebSocket(url)
  const frames: Frame[] = []
  socket.onmessage = (event) => frames.push(JSON.parse(String(event.data)))
  let timer: Timer | undefined
  const closed = await Promise.race([
    new Promise<CloseEvent>((resolve) => (socket.onclose = resolve)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not refused within 5 s; frames: ${JSON.stringify(frames)}`)), 5000))),
  ]).finally(() => clearTimeout(timer))
  return { frames, code: closed.code, reason: closed.reason }
}

/** An access token of `who`'s session that expires `seconds` from now, signed as the server signs them. */
async function accessTokenFor(who: Account, seconds: number): Promise<string> {
  const { sub, sid, ver } = decodeJwt(who.token) as { sub: string; sid: string; ver: number }
  const tokens = createTokens({ secret: TEST_SECRET, accessTtlSeconds: seconds, refreshTtlSeconds: 3600 })
  return (await tokens.issuePair({ userId: sub, sessionId: sid, version: ver }, { refreshJti: crypto.randomUUID(), issuedAt: Date.now() })).access_token
}

const scrape = async (t: TestApp) => (await t.app.handle(new Request('http://localhost/metrics'))).text()
const seriesValue = (text: string, series: string) => Number(text.match(new RegExp(`^${series} (\\S+)$`, 'm'))?.[1])

describe('/ws protocol pings', () => {
  test('a client flooding ping control frames is closed with 1008 at the ping limit, though the frame limit is off', async () => {
    await using t = await testApp({ WS_PING_LIMIT_PER_MINUTE: '30' })
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const flooder = await RawSocket.open(`${ws}?token=${alice.token}`)

    flooder.ping(10_000)

    expect(await flooder.closeFrame()).toEqual({ code: 1008, reason: 'Too many pings' })
    expect(flooder.texts().map((f) => f.type === 'error' && f.error.code)).toContain('rate_limited')
    // Bun answered the pings it read before the close, and none after it.
    expect(flooder.count('pong')).toBeLessThan(10_000)
    await flooder.ended
  })

  test('a flood of unsolicited pongs is closed the same way', async () => {
    await using t = await testApp({ WS_PING_LIMIT_PER_MINUTE: '30' })
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const flooder = await RawSocket.open(`${ws}?token=${alice.token}`)

    flooder.pong(10_000)

    expect(await flooder.closeFrame()).toEqual({ code: 1008, reason: 'Too many pings' })
  })

  test('a client that pings as often as the default limit allows is answered every time, keeps its socket, and keeps its frame budget', async () => {
    await using t = await testApp({ WS_FRAME_LIMIT_PER_MINUTE: '3' })
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const client = await RawSocket.open(`${ws}?token=${alice.token}`)

    client.ping(t.deps.config.wsPingLimitPerMinute)
    for (let i = 0; i < 3; i++) client.text('{"type":"ping"}')

    await client.until((s) => s.texts().filter((f) => f.type === 'pong').length === 3, 'three JSON pongs')
    expect(t.deps.config.wsPingLimitPerMinute).toBe(60)
    expect(client.count('pong')).toBe(60)
    expect(client.texts().map((f) => f.type)).toEqual(['ready', 'pong', 'pong', 'pong'])
    expect(client.count('close')).toBe(0)
    client.destroy()
  })
})

describe('/ws error frame logs', () => {
  test('bad frames at full speed write ten lines a minute per socket, each client value cut to 64 characters, then one line counting the rest', async () => {
    const logs = captureLogs()
    await using t = await testApp({}, { logger: logs.logger })
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    using socket = await connect(ws, alice)
    const FRAMES = 200
    const hugeType = 'x'.repeat(20_000)

    for (let i = 0; i < FRAMES; i++) socket.send({ type: hugeType })
    await socket.drain()

    expect(socket.received.filter((f) => f.type === 'error' && f.error.code === 'unknown_type')).toHaveLength(FRAMES)
    const lines = logs.lines.filter((l) => l.msg === 'websocket error frame')
    expect(lines).toHaveLength(ERROR_LINES_PER_MINUTE)
    for (const line of lines) expect(line).toEqual({ level: 'info', time: expect.any(String), msg: 'websocket error frame', user_id: alice.id, code: 'unknown_type', frame_type: `${'x'.repeat(63)}…` })

    socket.close()
    const counted = await logs.waitFor((l) => l.msg === 'websocket error frames not logged')
    expect(counted).toMatchObject({ user_id: alice.id, unlogged: FRAMES - ERROR_LINES_PER_MINUTE })
    // The whole log of the attack: a few kilobytes, where each line used to carry the 20 kB type.
    expect(logs.text().length).toBeLessThan(10_000)
  })

  test('a token sent as a frame type is masked in the log, never written', async () => {
    const logs = captureLogs()
    await using t = await testApp({}, { logger: logs.logger })
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    using socket = await connect(ws, alice)

    socket.send({ type: alice.token })
    expect((await socket.nextOfType('error')).error.code).toBe('unknown_type')

    expect((await logs.waitFor((l) => l.msg === 'websocket error frame')).frame_type).toBe('[redacted]…')
    expect(logs.text()).not.toContain(alice.token.slice(0, 40))
  })
})

describe('/ws sockets per user', () => {
  test('one account may hold 20 sockets by default: the 21st is refused with too_many_sockets and 1013, and the 20 keep working', async () => {
    const logs = captureLogs()
    await using t = await testApp({}, { logger: logs.logger })
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const sockets: TestSocket[] = []
    try {
      for (let i = 0; i < 20; i++) sockets.push(await connect(ws, alice))

      const refused = await refusedSocket(`${ws}?token=${alice.token}`)

      expect(refused).toEqual({
        frames: [{ type: 'error', error: { code: 'too_many_sockets', message: expect.stringContaining('20 open sockets') } }],
        code: 1013,
        reason: 'Too many sockets',
      })
      expect(await logs.waitFor((l) => l.msg === 'websocket refused')).toMatchObject({ user_id: alice.id, open: 20 })
      // Someone else is not affected, and every one of alice's 20 still answers.
      using other = await connect(ws, bob)
      expect(other.received[0]).toEqual({ type: 'ready', user_id: bob.id })
      for (const socket of sockets) expect(await socket.drain()).toEqual([])

      // A place freed is a place taken.
      sockets.pop()!.close()
      await logs.waitFor((l) => l.msg === 'websocket disconnected' && l.user_id === alice.id)
      sockets.push(await connect(ws, alice))
    } finally {
      for (const socket of sockets) socket.close()
    }
  })

  test('WS_MAX_SOCKETS_PER_USER sets the cap, and a refused socket counts as no open connection', async () => {
    await using t = await testApp({ WS_MAX_SOCKETS_PER_USER: '2' })
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    using first = await connect(ws, alice)
    using second = await connect(ws, alice)

    expect((await refusedSocket(`${ws}?token=${alice.token}`)).code).toBe(1013)

    const metrics = await scrape(t)
    expect(seriesValue(metrics, 'pneumatic_websocket_connections_active')).toBe(2)
    expect(seriesValue(metrics, 'pneumatic_websocket_errors_total\\{code="too_many_sockets"\\}')).toBe(1)
    expect([await first.drain(), await second.drain()]).toEqual([[], []])
  })
})

describe('/ws token expiry', () => {
  test('a socket is closed when its access token expires (token_expired, then 1008), unless an auth frame with a fresh token came first', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const shortLived = await accessTokenFor(alice, 2)
    // Two sockets on the same token: one renews it, the other shows when it expired.
    using renewed = await TestSocket.open(`${ws}?token=${shortLived}`)
    using expiring = await TestSocket.open(`${ws}?token=${shortLived}`)

    renewed.send({ type: 'auth', token: 'not.a.token' })
    expect(await renewed.next()).toMatchObject({ type: 'error', error: { code: 'invalid_token' } })
    renewed.send({ type: 'auth', token: bob.token })
    expect(await renewed.next()).toMatchObject({ type: 'error', error: { code: 'forbidden' } })
    renewed.send({ type: 'auth' })
    expect(await renewed.next()).toMatchObject({ type: 'error', error: { code: 'validation_failed', details: [{ field: 'token' }] } })
    renewed.send({ type: 'auth', token: await accessTokenFor(alice, 3600) })
    expect(await renewed.next()).toEqual({ type: 'authenticated' })

    const closed = await expiring.closed
    expect({ code: closed.code, reason: closed.reason }).toEqual({ code: 1008, reason: 'Token expired' })
    expect(Date.now()).toBeGreaterThanOrEqual(decodeJwt(shortLived).exp! * 1000)
    expect(expiring.received.at(-1)).toMatchObject({ type: 'error', error: { code: 'token_expired' } })
    // The renewed socket outlived the token it was opened with.
    expect(await renewed.drain()).toEqual([])
  }, 15_000)

  test('an auth frame moves the socket to the session of its token: that session ending closes it', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const secondLogin = await call(t.app, 'POST', '/auth/login', { body: { username: alice.username, password: 'correct horse battery' } })
    using socket = await connect(ws, alice)

    socket.send({ type: 'auth', token: secondLogin.body.access_token })
    expect(await socket.next()).toEqual({ type: 'authenticated' })
    expect((await call(t.app, 'POST', '/auth/logout', { token: alice.token })).status).toBe(204)
    expect(await socket.drain()).toEqual([])
    expect((await call(t.app, 'POST', '/auth/logout', { token: secondLogin.body.access_token })).status).toBe(204)

    expect((await socket.closed).code).toBe(1008)
  })

  test('a web UI socket lives as long as its browser session, not its access token, and is then told to reconnect (1013)', async () => {
    await using t = await testApp()
    const { http, ws } = listen(t.app)
    const alice = await account(t.app)
    const shortLived = await accessTokenFor(alice, 2)
    const cookieSocket = (cookie: string) => TestSocket.open(`${ws}?format=html`, { headers: { cookie, origin: http } })
    using session = await cookieSocket(`${ACCESS_COOKIE}=${shortLived}; ${REFRESH_COOKIE}=${alice.refresh}`)
    using accessOnly = await cookieSocket(`${ACCESS_COOKIE}=${shortLived}`)
    using api = await TestSocket.open(`${ws}?token=${shortLived}`)

    expect((await api.closed).code).toBe(1008)
    // Cookies are renewed by an upgrade: the web UI reconnects on 1013, and its cookies then decide.
    const closed = await accessOnly.closed
    expect({ code: closed.code, reason: closed.reason }).toEqual({ code: 1013, reason: 'Token expired' })
    expect(accessOnly.received.at(-1)).toMatchObject({ type: 'error', error: { code: 'token_expired' } })
    expect(await session.drain()).toEqual([])

    // Its session ending still closes it at once.
    expect((await call(t.app, 'POST', '/auth/logout', { token: alice.token })).status).toBe(204)
    expect((await session.closed).code).toBe(1008)
  }, 15_000)
})

describe('/ws readers that stop reading', () => {
  test('once all slow readers together hold more than the budget, the slowest are disconnected, each close counted, and the readers that read miss nothing', async () => {
    const logs = captureLogs()
    await using t = await testApp({ WS_SEND_BUFFER_BUDGET_MIB: '2' }, { logger: logs.logger })
    const { ws } = listen(t.app)
    const sender = await account(t.app)
    const readers = await Promise.all(Array.from({ length: 6 }, () => account(t.app)))
    const group = await conversation(t.app, sender, readers, 'stalled readers')
    const stalled = await Promise.all(readers.slice(1).map((reader) => RawSocket.open(`${ws}?token=${reader.token}`)))
    for (const socket of stalled) {
      await socket.until((s) => s.count('text') > 0, 'ready')
      socket.pause()
    }
    using reading = await connect(ws, readers[0]!)
    using sending = await connect(ws, sender)
    const content = '😀'.repeat(4000) // 16 kB

    // Batches of 16 kB messages until every stalled reader is gone (they also hold kernel buffers of a few MB each first).
    let sent = 0
    for (let batch = 0; batch < 600 && seriesValue(await scrape(t), 'pneumatic_websocket_backpressure_closes_total') < stalled.length; batch++) {
      for (let i = 0; i < 5; i++) sending.send({ type: 'message', message_id: `m-${sent + i}`, conversation_id: group.id, content })
      sent += 5
      await sending.drain()
    }

    const metrics = await scrape(t)
    expect(seriesValue(metrics, 'pneumatic_websocket_backpressure_closes_total')).toBe(stalled.length)
    expect(seriesValue(metrics, 'pneumatic_websocket_connections_active')).toBe(2)
    const sweeps = logs.lines.filter((l) => l.msg === 'websocket readers too slow: disconnecting')
    expect(sweeps.length).toBeGreaterThan(0)
    expect(sweeps[0]).toMatchObject({ budget_bytes: 2 * 1024 * 1024, socket_limit_bytes: 1024 * 1024 })
    // What was buffered never went past the budget by more than a sweep's worth (see buffers.ts),
    // where five readers at their own limit would hold 5 MiB: the budget closed some of them first.
    for (const sweep of sweeps) expect(sweep.buffered_bytes).toBeLessThan(3 * 1024 * 1024)
    expect(sweeps.reduce((n, sweep) => n + sweep.for_budget, 0)).toBeGreaterThan(0)
    const disconnected = logs.lines.filter((l) => l.msg === 'websocket disconnected' && l.slow_reader === true)
    expect(disconnected.map((l) => l.code)).toEqual(Array(stalled.length).fill(1006))
    // The reader that reads has every message, in order.
    await reading.drain()
    expect(reading.received.filter((f) => f.type === 'message').map((f) => f.message.message_id)).toEqual(Array.from({ length: sent }, (_, i) => `m-${i}`))
    for (const socket of stalled) socket.destroy()
  }, 30_000)
})
