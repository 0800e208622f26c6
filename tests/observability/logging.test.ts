import { describe, expect, test } from 'bun:test'
import { clientText, createLogger, MAX_LOGGED_CLIENT_CHARS, redactUrl } from '../../src/observability/logger'
import { sqliteOf, captureLogs, listen, testApp } from '../support/app'
import { account, call, conversation } from '../support/http'
import { FormClient } from '../support/form-client'
import { attemptUpgrade, TestSocket } from '../support/ws'

const requestLines = (lines: Record<string, unknown>[]) => lines.filter((l) => l.msg === 'request')

describe('request logs', () => {
  test('one JSON line per request: method, route template, status, duration, request id and user id', async () => {
    const logs = captureLogs()
    await using t = await testApp({}, { logger: logs.logger })
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    const reply = await call(t.app, 'GET', `/conversations/${direct.id}/messages?limit=5`, { token: alice.token })
    const line = await logs.waitFor((l) => l.msg === 'request' && l.request_id === reply.headers.get('x-request-id'))
    expect(line).toEqual({
      level: 'info',
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      msg: 'request',
      method: 'GET',
      route: '/conversations/:id/messages',
      status: 200,
      duration_ms: expect.any(Number),
      request_id: reply.headers.get('x-request-id'),
      user_id: alice.id,
    })
  })

  test('a web UI page and a WebSocket upgrade are logged with the user they act for; an upgrade as 101', async () => {
    const logs = captureLogs()
    await using t = await testApp({}, { logger: logs.logger })
    const alice = await account(t.app)
    const browser = new FormClient(t.app)
    expect((await browser.post('/ui/login', { username: alice.username, password: 'correct horse battery' })).status).toBe(303)
    const me = await browser.get('/')
    expect(me.status).toBe(200)
    const page = await logs.waitFor((l) => l.msg === 'request' && l.request_id === me.headers.get('x-request-id'))
    expect(page).toMatchObject({ method: 'GET', route: '/', status: 200, user_id: alice.id })

    const { ws } = listen(t.app)
    const socket = await TestSocket.open(`${ws}?token=${alice.token}`)
    const upgrade = await logs.waitFor((l) => l.msg === 'request' && l.route === '/ws')
    expect(upgrade).toMatchObject({ method: 'GET', status: 101, user_id: alice.id })
    socket.close()
  })

  test('a request whose caller is not authenticated has no user id', async () => {
    const logs = captureLogs()
    await using t = await testApp({}, { logger: logs.logger })
    const reply = await call(t.app, 'GET', '/conversations', { token: 'not-a-token' })
    expect(reply.status).toBe(401)
    const line = await logs.waitFor((l) => l.msg === 'request' && l.request_id === reply.headers.get('x-request-id'))
    expect(line).toMatchObject({ route: '/conversations', status: 401 })
    expect(line).not.toHaveProperty('user_id')
  })

  test('an unknown path is logged under one route label, never the raw path', async () => {
    const logs = captureLogs()
    await using t = await testApp({}, { logger: logs.logger })
    await call(t.app, 'GET', '/no/such/path/123')
    expect(await logs.waitFor((l) => l.msg === 'request')).toMatchObject({ route: 'unmatched', status: 404 })
    expect(logs.text()).not.toContain('/no/such/path')
  })

  test('a sane incoming X-Request-Id is kept and echoed; anything else is replaced', async () => {
    const logs = captureLogs()
    await using t = await testApp({}, { logger: logs.logger })
    const kept = await call(t.app, 'GET', '/health', { headers: { 'x-request-id': 'edge-42.abc' } })
    expect(kept.headers.get('x-request-id')).toBe('edge-42.abc')
    const replaced = await call(t.app, 'GET', '/health', { headers: { 'x-request-id': 'bad id\twith "junk"' } })
    expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    await logs.waitFor((l) => l.request_id === replaced.headers.get('x-request-id'))
    expect(requestLines(logs.lines).map((l) => l.request_id)).toEqual(['edge-42.abc', replaced.headers.get('x-request-id')])
  })

  test('requests refused before routing (413, 429) are logged too', async () => {
    const logs = captureLogs()
    await using t = await testApp({ RATE_LIMIT_PER_MINUTE: '1' }, { logger: logs.logger })
    const big = await call(t.app, 'POST', '/auth/login', { raw: '{}', headers: { 'content-length': String(1024 * 1024) } })
    expect(big.status).toBe(413)
    const throttled = await call(t.app, 'GET', '/users')
    expect(throttled.status).toBe(429)
    expect(throttled.headers.get('retry-after')).toMatch(/^\d+$/)
    const lines = await Promise.all([big, throttled].map((r) => logs.waitFor((l) => l.msg === 'request' && l.request_id === r.headers.get('x-request-id'))))
    expect(lines.map((l) => [l.status, l.route])).toEqual([
      [413, 'unmatched'],
      [429, 'unmatched'],
    ])
  })

  test('a request line is laid out as pino lays out every other line: level and time first, msg last', async () => {
    const logs = captureLogs()
    await using t = await testApp({}, { logger: logs.logger })
    logs.logger.info({ detail: 1 }, 'other')
    const reply = await call(t.app, 'GET', '/health')
    await logs.waitFor((l) => l.msg === 'request' && l.request_id === reply.headers.get('x-request-id'))
    const keys = (msg: string) => Object.keys(logs.lines.find((l) => l.msg === msg)!)
    expect(keys('request').slice(0, 2)).toEqual(keys('other').slice(0, 2))
    expect(keys('request').at(-1)).toBe(keys('other').at(-1)!)
    expect(logs.text().split('\n').filter(Boolean)).toHaveLength(logs.lines.length)
  })

  test('LOG_LEVEL=warn drops request lines, but keeps those of server errors', async () => {
    const logs = captureLogs('warn')
    await using t = await testApp({}, { logger: logs.logger })
    const alice = await account(t.app)
    sqliteOf(t).sqlite.run('DROP TABLE conversation_members')
    const failed = await call(t.app, 'GET', '/conversations', { token: alice.token })
    expect(failed.status).toBe(500)
    await logs.waitFor((l) => l.msg === 'request' && l.status === 500)
    expect(logs.lines.filter((l) => l.msg === 'request').map((l) => l.status)).toEqual([500])
  })

  test('a server error is logged at error level', async () => {
    const logs = captureLogs()
    await using t = await testApp({}, { logger: logs.logger })
    const alice = await account(t.app)
    sqliteOf(t).sqlite.run('DROP TABLE conversation_members')
    await call(t.app, 'GET', '/conversations', { token: alice.token })
    expect(await logs.waitFor((l) => l.msg === 'request' && l.status === 500)).toMatchObject({ level: 'error', route: '/conversations' })
    expect(logs.lines.find((l) => l.msg === 'unhandled error')).toMatchObject({ level: 'error', url: '/conversations' })
  })

  test('the URL of a failed request is logged with any token in it masked', async () => {
    const logs = captureLogs()
    await using t = await testApp({}, { logger: logs.logger })
    const alice = await account(t.app)
    sqliteOf(t).sqlite.run('DROP TABLE conversation_members')
    await call(t.app, 'GET', `/conversations?token=${alice.token}&x=1`, { token: alice.token })
    expect(logs.lines.find((l) => l.msg === 'unhandled error')!.url).toBe('/conversations?token=[redacted]&x=1')
    expect(logs.text()).not.toContain(alice.token)
  })

  test('passwords, tokens and cookies never appear in the logs', async () => {
    const logs = captureLogs('trace')
    await using t = await testApp({}, { logger: logs.logger })
    const { http, ws } = listen(t.app)
    const password = 'hunter2-correct-horse'
    await call(t.app, 'POST', '/auth/signup', { body: { username: 'alice', password } })
    const login = await call(t.app, 'POST', '/auth/login', { body: { username: 'alice', password } })
    const { access_token, refresh_token } = login.body
    await call(t.app, 'POST', '/auth/refresh', { body: { refresh_token } })
    await call(t.app, 'GET', '/auth/me', { token: access_token, headers: { cookie: `pneumatic_access=${access_token}` } })
    await attemptUpgrade(`${http}/ws?token=not-a-valid-token-SECRET`)
    using socket = await TestSocket.open(`${ws}?token=${access_token}`)
    socket.send('not json')
    await socket.nextOfType('error')
    await logs.waitFor((l) => l.msg === 'websocket error frame')
    const text = logs.text()
    expect(logs.lines.length).toBeGreaterThan(5)
    for (const secret of [password, access_token, refresh_token, 'not-a-valid-token-SECRET']) expect(text).not.toContain(secret)
  })

  test('secrets that reach a log call by mistake are masked', () => {
    const raw: string[] = []
    const logger = createLogger('info', { write: (line: string) => void raw.push(line) })
    logger.info({ password: 'p1', token: 't1', user: { refresh_token: 'r1' }, req: { headers: { authorization: 'Bearer a1', cookie: 'c1' } } }, 'oops')
    expect(raw.join('')).not.toMatch(/p1|t1|r1|a1|c1/)
  })

  test('credentials in a URL are masked before it is logged', () => {
    expect(redactUrl('/ws?format=html&token=abc.def.ghi&x=1')).toBe('/ws?format=html&token=[redacted]&x=1')
    expect(redactUrl('/ws?access_token=abc')).toBe('/ws?access_token=[redacted]')
  })

  test('a value a client chose is logged cut to 64 characters, and a token in it is masked', () => {
    expect(MAX_LOGGED_CLIENT_CHARS).toBe(64)
    expect(clientText('message')).toBe('message')
    expect(clientText('x'.repeat(64))).toBe('x'.repeat(64))
    expect(clientText('x'.repeat(1_000_000))).toBe(`${'x'.repeat(63)}…`)
    expect(clientText('/a/path', 4)).toBe('/a/…')
    const jwt = 'eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl'
    expect(clientText(jwt, 1000)).toBe('[redacted]')
    expect(clientText(`before ${jwt} after`, 1000)).toBe('before [redacted] after')
    expect(clientText(jwt)).not.toContain('eyJ')
  })

  test('LOG_LEVEL is honoured: at warn, info lines such as request logs are dropped', () => {
    const raw: string[] = []
    const logger = createLogger('warn', { write: (line: string) => void raw.push(line) })
    logger.info({ method: 'GET' }, 'request')
    logger.warn('kept')
    expect(raw.map((l) => JSON.parse(l).msg)).toEqual(['kept'])
  })
})

describe('WebSocket logs', () => {
  test('connects, error frames and disconnects are logged with the user id', async () => {
    const logs = captureLogs()
    await using t = await testApp({}, { logger: logs.logger })
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const socket = await TestSocket.open(`${ws}?token=${alice.token}`)
    socket.send('{broken')
    await socket.nextOfType('error')
    socket.close()
    await logs.waitFor((l) => l.msg === 'websocket disconnected')
    const ws_ = logs.lines.filter((l) => String(l.msg).startsWith('websocket'))
    expect(ws_.map((l) => l.msg)).toEqual(['websocket connected', 'websocket error frame', 'websocket disconnected'])
    expect(ws_.every((l) => l.user_id === alice.id)).toBe(true)
    expect(ws_[1]).toMatchObject({ code: 'invalid_json' })
    expect(ws_[2]).toMatchObject({ code: expect.any(Number), duration_ms: expect.any(Number) })
  })
})
