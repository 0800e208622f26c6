import { describe, expect, test } from 'bun:test'
import { once } from 'node:events'
import { connect as tcpConnect } from 'node:net'
import { MAX_BODY_BYTES } from '../../src/app'
import { operationOf } from '../../src/db/client'
import { createMetrics, rateWindow } from '../../src/observability/metrics'
import { listen, testApp, type TestApp } from '../support/app'
import { account, call, conversation, send } from '../support/http'
import { TestSocket } from '../support/ws'

const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8'

/** /metrics through the app, no socket needed. */
async function scrape(t: TestApp): Promise<string> {
  const response = await t.app.handle(new Request('http://localhost/metrics'))
  expect(response.status).toBe(200)
  return response.text()
}

/** /metrics over the server's real socket: each scrape lets the event loop handle socket closes. */
async function scrapeOver(http: string): Promise<string> {
  const response = await fetch(`${http}/metrics`)
  expect(response.status).toBe(200)
  return response.text()
}

/** The value of one series, `name` or `name{labels}` exactly as exposed; undefined when absent. */
function seriesValue(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const space = line.lastIndexOf(' ')
    if (line.slice(0, space) === series) return Number(line.slice(space + 1))
  }
  return undefined
}

/** Scrapes until `series` reads `expected` (a close is handled after the client sees it), for 5 s at most. */
async function scrapeUntil(http: string, series: string, expected: number): Promise<string> {
  const deadline = performance.now() + 5000
  let text = await scrapeOver(http)
  while (seriesValue(text, series) !== expected && performance.now() < deadline) text = await scrapeOver(http)
  expect(seriesValue(text, series)).toBe(expected)
  return text
}

const typeOf = (text: string, name: string) => text.match(new RegExp(`^# TYPE ${name} (\\w+)$`, 'm'))?.[1]

const connect = (ws: string, who: { token: string }) => TestSocket.open(`${ws}?token=${who.token}`)

/**
 * A WebSocket client that sends but never reads, so what the server sends it piles up in Bun's
 * buffer for it. Frames are masked with a zero key, which leaves the payload as it is.
 */
async function stalledClient(wsUrl: string) {
  const url = new URL(wsUrl)
  const socket = tcpConnect(Number(url.port), url.hostname)
  socket.on('error', () => {}) // the server hangs up on it: that is the point
  await once(socket, 'connect')
  socket.write(
    `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  )
  const [head] = await once(socket, 'data')
  expect(String(head)).toStartWith('HTTP/1.1 101')
  socket.pause()
  return {
    send(text: string): void {
      const payload = Buffer.from(text)
      const length = payload.length < 126 ? [0x80 | payload.length] : [0x80 | 126, payload.length >> 8, payload.length & 0xff]
      socket.write(Buffer.concat([Buffer.from([0x81, ...length, 0, 0, 0, 0]), payload]))
    },
    destroy: () => socket.destroy(),
  }
}

describe('GET /metrics', () => {
  test('is Prometheus text, needs no token, and is listed in the API docs under observability', async () => {
    await using t = await testApp()
    const reply = await call(t.app, 'GET', '/metrics')
    expect(reply.status).toBe(200)
    expect(reply.headers.get('content-type')).toBe(PROMETHEUS_TEXT)
    expect(reply.body).toContain('# TYPE pneumatic_messages_sent_total counter\n')
    const spec = (await call(t.app, 'GET', '/docs/json')).body
    expect(spec.paths['/metrics'].get.tags).toContain('observability')
    expect(spec.paths['/metrics'].get.security).toEqual([])
  })

  test('counts WebSocket connections established and open, and a closed one is no longer open', async () => {
    await using t = await testApp()
    const { http, ws } = listen(t.app)
    const alice = await account(t.app)
    using first = await connect(ws, alice)
    using second = await connect(ws, alice)

    let text = await scrapeOver(http)
    expect(typeOf(text, 'pneumatic_websocket_connections_total')).toBe('counter')
    expect(typeOf(text, 'pneumatic_websocket_connections_active')).toBe('gauge')
    expect(seriesValue(text, 'pneumatic_websocket_connections_total')).toBe(2)
    expect(seriesValue(text, 'pneumatic_websocket_connections_active')).toBe(2)

    first.close()
    await first.closed
    text = await scrapeUntil(http, 'pneumatic_websocket_connections_active', 1)
    expect(seriesValue(text, 'pneumatic_websocket_connections_total')).toBe(2)
    await second.drain() // the other one is still served
  })

  test('counts each stored message once and averages them over the last 60 seconds', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    expect(seriesValue(await scrape(t), 'pneumatic_messages_sent_total')).toBe(0)

    for (const content of ['one', 'two', 'three']) expect((await send(t.app, alice, direct.id, content)).status).toBe(201)

    const text = await scrape(t)
    expect(typeOf(text, 'pneumatic_messages_sent_total')).toBe('counter')
    expect(typeOf(text, 'pneumatic_messages_per_second')).toBe('gauge')
    expect(seriesValue(text, 'pneumatic_messages_sent_total')).toBe(3)
    expect(seriesValue(text, 'pneumatic_messages_per_second')).toBe(0.05)
  })

  test('a retried message is not counted again; one sent over the WebSocket is', async () => {
    await using t = await testApp()
    const { http, ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    expect((await send(t.app, alice, direct.id, 'once', 'the-id')).status).toBe(201)
    expect((await send(t.app, alice, direct.id, 'once', 'the-id')).headers.get('idempotent-replayed')).toBe('true')
    expect(seriesValue(await scrapeOver(http), 'pneumatic_messages_sent_total')).toBe(1)

    using socket = await connect(ws, alice)
    socket.send({ type: 'message', message_id: 'over-ws', conversation_id: direct.id, content: 'live' })
    await socket.nextMessage((m) => m.message_id === 'over-ws')
    expect(seriesValue(await scrapeOver(http), 'pneumatic_messages_sent_total')).toBe(2)
  })

  test('request durations are labelled with the route template, never the raw path; "unmatched" when no route took the request', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    expect((await call(t.app, 'GET', `/conversations/${direct.id}/messages`, { token: alice.token })).status).toBe(200)
    expect((await call(t.app, 'GET', `/no/such/${direct.id}`)).status).toBe(404)
    // A body that fails to parse never reaches the handler, but its route is known.
    expect((await call(t.app, 'POST', '/messages', { token: alice.token, raw: '{not json' })).status).toBe(400)
    // Refused before routing.
    const big = await call(t.app, 'POST', '/messages', { token: alice.token, raw: '{}', headers: { 'content-length': String(MAX_BODY_BYTES + 1) } })
    expect(big.status).toBe(413)

    const text = await scrape(t)
    const count = (labels: string) => seriesValue(text, `pneumatic_http_request_duration_seconds_count{${labels}}`)
    expect(typeOf(text, 'pneumatic_http_request_duration_seconds')).toBe('histogram')
    expect(count('method="GET",route="/conversations/:id/messages",status="200"')).toBe(1)
    expect(count('method="GET",route="unmatched",status="404"')).toBe(1)
    expect(count('method="POST",route="/messages",status="400"')).toBe(1)
    expect(count('method="POST",route="unmatched",status="413"')).toBe(1)
    expect(count('method="POST",route="/auth/signup",status="201"')).toBe(2)
    expect(seriesValue(text, 'pneumatic_http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/auth/login",status="200"}')).toBe(2)
    expect(text).not.toContain(direct.id)
    expect(text).not.toContain('/no/such')
  })

  test('WebSocket frames received are counted, and each error frame by its code', async () => {
    await using t = await testApp()
    const { http, ws } = listen(t.app)
    const alice = await account(t.app)
    using socket = await connect(ws, alice)

    socket.send({ type: 'ping' })
    await socket.nextOfType('pong')
    socket.send('not json')
    expect((await socket.nextOfType('error')).error.code).toBe('invalid_json')
    socket.send({ type: 'shout' })
    expect((await socket.nextOfType('error')).error.code).toBe('unknown_type')
    socket.send({ type: 'shout' })
    await socket.nextOfType('error')

    const text = await scrapeOver(http)
    expect(typeOf(text, 'pneumatic_websocket_frames_received_total')).toBe('counter')
    expect(typeOf(text, 'pneumatic_websocket_errors_total')).toBe('counter')
    expect(seriesValue(text, 'pneumatic_websocket_frames_received_total')).toBe(4)
    expect(seriesValue(text, 'pneumatic_websocket_errors_total{code="invalid_json"}')).toBe(1)
    expect(seriesValue(text, 'pneumatic_websocket_errors_total{code="unknown_type"}')).toBe(2)
    expect(seriesValue(text, 'pneumatic_websocket_sends_dropped_total')).toBe(0)
  })

  test('a client that stops reading is disconnected, and the close is counted as backpressure', async () => {
    await using t = await testApp()
    const { http, ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    const big = { type: 'message', message_id: 'big', conversation_id: direct.id, content: 'x'.repeat(4000) }
    expect((await send(t.app, alice, direct.id, big.content, big.message_id)).status).toBe(201)

    // Each retry of a stored message is answered to its socket alone: 4 kB the client never reads.
    const client = await stalledClient(`${ws}?token=${alice.token}`)
    let text = await scrapeOver(http)
    for (let batch = 0; batch < 40 && !seriesValue(text, 'pneumatic_websocket_backpressure_closes_total'); batch++) {
      for (let i = 0; i < 200; i++) client.send(JSON.stringify(big))
      text = await scrapeOver(http)
    }
    client.destroy()
    text = await scrapeUntil(http, 'pneumatic_websocket_backpressure_closes_total', 1)
    expect(seriesValue(text, 'pneumatic_websocket_connections_active')).toBe(0)
  })

  test('database statements are timed by operation, and whole transactions too', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    const count = (text: string, labels: string) => seriesValue(text, `pneumatic_db_query_duration_seconds_count${labels}`) ?? 0
    const before = await scrape(t)

    expect((await send(t.app, alice, direct.id, 'hello')).status).toBe(201)

    const after = await scrape(t)
    expect(typeOf(after, 'pneumatic_db_query_duration_seconds')).toBe('histogram')
    for (const operation of ['select', 'insert', 'update']) {
      expect(count(after, `{operation="${operation}"}`)).toBeGreaterThan(count(before, `{operation="${operation}"}`))
    }
    expect(seriesValue(after, 'pneumatic_db_query_duration_seconds_sum{operation="insert"}')).toBeGreaterThan(0)
    expect(seriesValue(after, 'pneumatic_db_transaction_duration_seconds_count')).toBe(seriesValue(before, 'pneumatic_db_transaction_duration_seconds_count')! + 1)
  })

  test("the process's CPU time and memory are reported, and no Node.js series", async () => {
    await using t = await testApp()
    const text = await scrape(t)
    for (const name of ['process_cpu_seconds_total', 'process_cpu_user_seconds_total', 'process_cpu_system_seconds_total']) {
      expect(typeOf(text, name)).toBe('counter')
    }
    for (const name of ['process_resident_memory_bytes', 'process_heap_size_bytes', 'process_heap_used_bytes', 'process_start_time_seconds']) {
      expect(typeOf(text, name)).toBe('gauge')
    }
    const usage = process.cpuUsage()
    expect(seriesValue(text, 'process_cpu_seconds_total')).toBeGreaterThan(0)
    expect(seriesValue(text, 'process_cpu_seconds_total')).toBeLessThanOrEqual((usage.user + usage.system) / 1e6)
    expect(seriesValue(text, 'process_resident_memory_bytes')).toBeGreaterThan(10 * 1024 * 1024)
    // Bun's heapUsed is not always below its heapTotal, so only their presence is checked.
    expect(seriesValue(text, 'process_heap_used_bytes')).toBeGreaterThan(0)
    expect(seriesValue(text, 'process_heap_size_bytes')).toBeGreaterThan(0)
    expect(Math.abs(seriesValue(text, 'process_start_time_seconds')! - (Date.now() / 1000 - process.uptime()))).toBeLessThan(2)
    expect(text).not.toContain('nodejs_')
  })

  test('each app has its own registry: one app counts nothing of another', async () => {
    await using first = await testApp()
    await using second = await testApp()
    const alice = await account(first.app)
    const bob = await account(first.app)
    const direct = await conversation(first.app, alice, [bob])
    await send(first.app, alice, direct.id, 'only here')
    expect(seriesValue(await scrape(first), 'pneumatic_messages_sent_total')).toBe(1)
    expect(seriesValue(await scrape(second), 'pneumatic_messages_sent_total')).toBe(0)
  })
})

describe('WebSocket closes', () => {
  test('a socket closed with 1006 counts as a backpressure close only if it was backpressured', async () => {
    const metrics = createMetrics()
    for (let i = 0; i < 3; i++) metrics.websocketOpened()
    metrics.websocketClosed(1006, false)
    metrics.websocketSendDropped()
    metrics.websocketClosed(1006, true)
    metrics.websocketClosed(1000, true)
    const text = await metrics.registry.metrics()
    expect(seriesValue(text, 'pneumatic_websocket_sends_dropped_total')).toBe(1)
    expect(seriesValue(text, 'pneumatic_websocket_backpressure_closes_total')).toBe(1)
    expect(seriesValue(text, 'pneumatic_websocket_connections_active')).toBe(0)
  })
})

describe('the message rate', () => {
  test('averages over the last 60 whole seconds, and older messages stop counting', () => {
    let now = 1_000_000_000_000
    const rate = rateWindow(60, () => now)
    expect(rate.perSecond()).toBe(0)
    rate.add()
    rate.add()
    rate.add()
    now += 30_000
    rate.add()
    expect(rate.perSecond()).toBe(4 / 60)
    now += 29_999
    expect(rate.perSecond()).toBe(4 / 60)
    now += 1 // the first three are 60 s old
    expect(rate.perSecond()).toBe(1 / 60)
    rate.add() // reuses the slot of the first three
    expect(rate.perSecond()).toBe(2 / 60)
    now += 60_000
    expect(rate.perSecond()).toBe(0)
  })
})

describe('database operations', () => {
  test('are read from the statement: select, insert, update, delete, else other', () => {
    expect(['select 1', '  INSERT into x', 'update x set', 'delete from x', 'with a as (select 1) select * from a', 'PRAGMA x', 'savepoint sp0', ''].map(operationOf)).toEqual([
      'select',
      'insert',
      'update',
      'delete',
      'other',
      'other',
      'other',
      'other',
    ])
  })
})

const PROMTOOL = Bun.which('promtool')
const skipPromtool = !PROMTOOL && process.env.CI !== 'true'
if (skipPromtool) {
  console.warn('[metrics] SKIPPED the promtool check: promtool not found; install it with `apt-get install -y prometheus` (Debian/Ubuntu). With CI=true it fails instead.')
}

test.skipIf(skipPromtool)("the live server's /metrics passes `promtool check metrics` with no complaints", async () => {
  if (!PROMTOOL) throw new Error('promtool not found and CI=true, so this fails rather than skips: install it with `apt-get install -y prometheus`')
  await using t = await testApp()
  const { http, ws } = listen(t.app)
  // Some of everything, so every series has samples and labels.
  const alice = await account(t.app)
  const bob = await account(t.app)
  const direct = await conversation(t.app, alice, [bob])
  await send(t.app, alice, direct.id, 'hello')
  await fetch(`${http}/conversations/${direct.id}/messages`, { headers: { authorization: `Bearer ${alice.token}` } })
  await fetch(`${http}/no/such/thing`)
  using socket = await connect(ws, alice)
  socket.send('not json')
  await socket.nextOfType('error')

  const text = await scrapeOver(http)
  expect(text).toContain('pneumatic_websocket_errors_total{code="invalid_json"} 1')
  const check = Bun.spawn([PROMTOOL, 'check', 'metrics'], { stdin: new Blob([text]), stdout: 'pipe', stderr: 'pipe' })
  const [stdout, stderr, exitCode] = await Promise.all([new Response(check.stdout).text(), new Response(check.stderr).text(), check.exited])
  expect({ exitCode, output: stdout + stderr }).toEqual({ exitCode: 0, output: '' })
})
