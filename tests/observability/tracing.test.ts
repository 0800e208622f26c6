import { afterEach, describe, expect, test } from 'bun:test'
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace'
import { loadConfig } from '../../src/config'
import { JsonLinesSpanExporter, startTracing, tracer, type Tracing } from '../../src/observability/tracing'
import { captureLogs, listen, onPostgres, testApp } from '../support/app'
import { account, call, conversation, send } from '../support/http'
import { TestSocket } from '../support/ws'

const config = loadConfig({}).tracing
let tracing: Tracing | null = null
afterEach(async () => {
  await tracing?.shutdown()
  tracing = null
})

/**
 * Finished spans in memory. Spans may end after the response a test reads (a frame's, say), so
 * tests wait for the span they need; waitFor fails after 5 s.
 */
class SpanRecorder extends InMemorySpanExporter {
  private waiters: Array<{ match: (s: ReadableSpan) => boolean; resolve: (s: ReadableSpan) => void }> = []
  override export(spans: ReadableSpan[], done: Parameters<InMemorySpanExporter['export']>[1]): void {
    super.export(spans, done)
    for (const span of spans) {
      for (const w of [...this.waiters]) {
        if (!w.match(span)) continue
        this.waiters.splice(this.waiters.indexOf(w), 1)
        w.resolve(span)
      }
    }
  }
  waitFor(name: string, match: (s: ReadableSpan) => boolean = () => true): Promise<ReadableSpan> {
    const test = (s: ReadableSpan) => s.name === name && match(s)
    const done = this.getFinishedSpans().find(test)
    if (done) return Promise.resolve(done)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no span "${name}" within 5 s`)), 5000)
      this.waiters.push({ match: test, resolve: (span) => (clearTimeout(timer), resolve(span)) })
    })
  }
}

function memory() {
  const exporter = new SpanRecorder()
  tracing = startTracing(config, exporter)
  return exporter
}

const byName = (spans: ReadableSpan[], name: string) => spans.filter((s) => s.name === name)
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId

describe('HTTP tracing', () => {
  test('each request is one SERVER span named after its route template, with its status', async () => {
    const spans = memory()
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    await call(t.app, 'GET', `/conversations/${direct.id}/messages`, { token: alice.token })
    const span = await spans.waitFor('GET /conversations/:id/messages')
    expect(span.attributes).toMatchObject({ 'http.route': '/conversations/:id/messages', 'http.response.status_code': 200, 'http.request.method': 'GET' })
    expect(span.kind).toBe(1) // SpanKind.SERVER
  })

  test('an incoming traceparent is continued', async () => {
    const spans = memory()
    await using t = await testApp()
    await call(t.app, 'GET', '/health', { headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } })
    const span = await spans.waitFor('GET /health')
    expect(span.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c')
    expect(parentOf(span)).toBe('b7ad6b7169203331')
  })

  test('sending a message nests the fan-out under the request span, and the log line carries the trace id', async () => {
    const spans = memory()
    const logs = captureLogs()
    await using t = await testApp({}, { logger: logs.logger })
    listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    const reply = await send(t.app, alice, direct.id, 'traced')
    const line = await logs.waitFor((l) => l.msg === 'request' && l.request_id === reply.headers.get('x-request-id'))
    const server = await spans.waitFor('POST /messages')
    const fanout = byName(spans.getFinishedSpans(), 'fanout').filter((s) => s.spanContext().traceId === server!.spanContext().traceId)
    expect(fanout).toHaveLength(1)
    expect(parentOf(fanout[0]!)).toBe(server!.spanContext().spanId)
    expect(fanout[0]!.attributes['event.type']).toBe('conversation.changed')
    expect(line.trace_id).toBe(server!.spanContext().traceId)
  })

  test('database work is recorded as child spans of the request', async () => {
    const spans = memory()
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    await send(t.app, alice, direct.id, 'stored')
    const server = await spans.waitFor('POST /messages')
    const children = spans.getFinishedSpans().filter((s) => parentOf(s) === server.spanContext().spanId)
    const names = children.map((s) => s.name)
    expect(names).toContain('db.transaction')
    expect(names).toContain('db.insert')
    expect(names).toContain('db.select')
    const insert = children.find((s) => s.name === 'db.insert')!
    expect(insert.attributes).toEqual({ 'db.system.name': onPostgres ? 'postgresql' : 'sqlite', 'db.operation.name': 'insert' })
    // Each span sits inside its parent's time.
    const start = (s: ReadableSpan) => s.startTime[0] * 1e3 + s.startTime[1] / 1e6
    expect(start(insert)).toBeGreaterThanOrEqual(start(server) - 1)
  })

  test('a 5xx marks the span as an error', async () => {
    const spans = memory()
    await using t = await testApp()
    const alice = await account(t.app)
    await t.sql('DROP TABLE conversation_members')
    await call(t.app, 'GET', '/conversations', { token: alice.token })
    const span = await spans.waitFor('GET /conversations')
    expect(span.status.code).toBe(2) // SpanStatusCode.ERROR
  })
})

describe('WebSocket tracing', () => {
  test('each frame handled is a span, with the fan-out it caused as its child', async () => {
    const spans = memory()
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    using socket = await TestSocket.open(`${ws}?token=${alice.token}`)
    socket.send({ type: 'message', message_id: 'traced-ws', conversation_id: direct.id, content: 'hello' })
    await socket.nextMessage()
    const frame = await spans.waitFor('ws.frame')
    expect(frame.attributes).toMatchObject({ 'ws.frame.type': 'message', 'enduser.id': alice.id })
    const fanout = await spans.waitFor('fanout', (s) => parentOf(s) === frame.spanContext().spanId)
    expect(fanout.attributes['event.type']).toBe('conversation.changed')
  })

  test('a frame that fails is recorded as an error span', async () => {
    const spans = memory()
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    using socket = await TestSocket.open(`${ws}?token=${alice.token}`)
    socket.send({ type: 'join', conversation_id: 'missing' })
    await socket.nextOfType('error')
    const frame = await spans.waitFor('ws.frame')
    expect(frame.status.code).toBe(2)
  })
})

describe('exporters', () => {
  test('none (the default) registers nothing', () => {
    expect(startTracing(loadConfig({}).tracing)).toBeNull()
  })

  test('console writes each span as one JSON line', () => {
    const lines: string[] = []
    const exporter = new JsonLinesSpanExporter((line) => lines.push(line))
    tracing = startTracing(config, exporter)
    tracer().startSpan('unit', { attributes: { a: 1 } }).end()
    expect(lines).toHaveLength(1)
    expect(lines[0]!.endsWith('\n')).toBe(true)
    expect(JSON.parse(lines[0]!)).toMatchObject({ kind: 'span', name: 'unit', trace_id: expect.stringMatching(/^[0-9a-f]{32}$/), attributes: { a: 1 } })
  })

  test('otlp sends spans over HTTP to OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces', async () => {
    const received: { path: string; body: string }[] = []
    let arrived!: () => void
    const got = new Promise<void>((resolve) => (arrived = resolve))
    using collector = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      async fetch(request) {
        received.push({ path: new URL(request.url).pathname, body: Buffer.from(await request.arrayBuffer()).toString('latin1') })
        arrived()
        return new Response('{}', { headers: { 'content-type': 'application/json' } })
      },
    })
    tracing = startTracing(loadConfig({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collector.port}`, OTEL_SERVICE_NAME: 'chat-test' }).tracing)
    tracer().startSpan('otlp-check').end()
    await tracing!.shutdown() // flushes the batch
    tracing = null
    await got
    expect(received[0]!.path).toBe('/v1/traces')
    expect(received[0]!.body).toContain('otlp-check')
    expect(received[0]!.body).toContain('chat-test')
  })
})
