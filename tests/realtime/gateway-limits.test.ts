import { describe, expect, test } from 'bun:test'
import { ERROR_LINES_PER_MINUTE } from '../../src/realtime/gateway'
import { captureLogs, listen, testApp } from '../support/app'
import { account, type Account } from '../support/http'
import { RawSocket, TestSocket } from '../support/ws'

// What one client may cost the server: protocol pings, log lines, sockets, a socket's lifetime,
// and what is buffered for readers that stop reading. Each test performs the attack.
// (testApp turns WS_FRAME_LIMIT_PER_MINUTE off, as the adversarial review did.)

const connect = (wsUrl: string, who: Account) => TestSocket.open(`${wsUrl}?token=${who.token}`)

describe('/ws protocol pings', () => {
  test('a client flooding ping control frames is closed with 1008 at the ping limit, though the frame limit is off', async () => {
    await using t = testApp({ WS_PING_LIMIT_PER_MINUTE: '30' })
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
    await using t = testApp({ WS_PING_LIMIT_PER_MINUTE: '30' })
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const flooder = await RawSocket.open(`${ws}?token=${alice.token}`)

    flooder.pong(10_000)

    expect(await flooder.closeFrame()).toEqual({ code: 1008, reason: 'Too many pings' })
  })

  test('a client that pings as often as the default limit allows is answered every time, keeps its socket, and keeps its frame budget', async () => {
    await using t = testApp({ WS_FRAME_LIMIT_PER_MINUTE: '3' })
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
    await using t = testApp({}, { logger: logs.logger })
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
    await using t = testApp({}, { logger: logs.logger })
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    using socket = await connect(ws, alice)

    socket.send({ type: alice.token })
    expect((await socket.nextOfType('error')).error.code).toBe('unknown_type')

    expect((await logs.waitFor((l) => l.msg === 'websocket error frame')).frame_type).toBe('[redacted]…')
    expect(logs.text()).not.toContain(alice.token.slice(0, 40))
  })
})
