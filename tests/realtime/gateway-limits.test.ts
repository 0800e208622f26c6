import { describe, expect, test } from 'bun:test'
import { listen, testApp } from '../support/app'
import { account } from '../support/http'
import { RawSocket } from '../support/ws'

// What one client may cost the server: protocol pings, log lines, sockets, a socket's lifetime,
// and what is buffered for readers that stop reading. Each test performs the attack.
// (testApp turns WS_FRAME_LIMIT_PER_MINUTE off, as the adversarial review did.)

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
