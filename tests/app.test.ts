import { describe, expect, test } from 'bun:test'
import { MAX_BODY_BYTES, stopGracefully } from '../src/app'
import { sqliteOf, listen, testApp } from './support/app'
import { account, call } from './support/http'

describe('errors', () => {
  test('an unknown route is 404 in the error shape', async () => {
    await using t = await testApp()
    const reply = await call(t.app, 'GET', '/no/such/thing')
    expect(reply).toMatchObject({ status: 404, body: { error: { code: 'not_found', message: 'No route for GET /no/such/thing' } } })
  })

  test('a body larger than the cap is 413 in the error shape, even when it declares no length', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const reply = await call(t.app, 'POST', '/messages', { token: alice.token, raw: 'x'.repeat(MAX_BODY_BYTES + 1) })
    expect(reply.status).toBe(413)
    expect(reply.body.error.code).toBe('payload_too_large')
  })

  test('over a real socket, a body that declares an oversized length is refused before it is read', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const response = await fetch(`${http}/auth/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(200 * 1024) })
    expect(response.status).toBe(413)
    expect((await response.json()).error.code).toBe('payload_too_large')
  })

  test('over a real socket, 2 MB is refused with 413 and the server stays healthy', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const response = await fetch(`${http}/auth/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(2 * 1024 * 1024) })
    expect(response.status).toBe(413)
    expect((await fetch(`${http}/health`)).status).toBe(200)
  })

  test('a server-side failure is a 500 with no stack trace or internals', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    sqliteOf(t).sqlite.run('DROP TABLE conversation_members')
    const reply = await call(t.app, 'GET', '/conversations', { token: alice.token })
    expect(reply.status).toBe(500)
    expect(reply.body).toEqual({ error: { code: 'internal_error', message: 'Internal server error' } })
  })
})

describe('stopGracefully', () => {
  test('a request in flight when the stop begins is finished and answered', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    let controller!: ReadableStreamDefaultController<Uint8Array>
    let started!: () => void
    const sending = new Promise<void>((resolve) => (started = resolve))
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c
        c.enqueue(new TextEncoder().encode('{"username":"alice",'))
        started()
      },
    })
    const inFlight = fetch(`${http}/auth/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, duplex: 'half' } as RequestInit)
    await sending
    await (await fetch(`${http}/health`)).text() // the server has taken the first request by now
    const stopping = stopGracefully(t.app, 5000)
    controller.enqueue(new TextEncoder().encode('"password":"correct horse battery"}'))
    controller.close()
    const reply = await inFlight
    expect(reply.status).toBe(201)
    expect((await reply.json()).username).toBe('alice')
    await stopping
    expect(t.app.server).toBeNull()
  })

  test('a request that never finishes cannot hold the server past the deadline', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    // A body that starts and never ends: the request stays in flight for ever.
    let started!: () => void
    const sending = new Promise<void>((resolve) => (started = resolve))
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"username":'))
        started()
      },
    })
    const hanging = fetch(`${http}/auth/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, duplex: 'half' } as RequestInit).catch((error) => error)
    await sending
    await (await fetch(`${http}/health`)).text() // the server is up and has taken the hanging request's connection
    await stopGracefully(t.app, 200)
    expect(t.app.server).toBeNull()
    expect(await hanging).toBeInstanceOf(Error)
  })
})

describe('GET /health and GET /ready', () => {
  test('health answers healthy', async () => {
    await using t = await testApp()
    expect(await call(t.app, 'GET', '/health')).toMatchObject({ status: 200, body: { status: 'healthy' } })
  })

  test('ready answers ready while the database answers', async () => {
    await using t = await testApp()
    expect(await call(t.app, 'GET', '/ready')).toMatchObject({ status: 200, body: { status: 'ready' } })
  })

  test('ready is 503 with a reason when the database is unavailable, and health stays up', async () => {
    await using t = await testApp()
    sqliteOf(t).sqlite.close()
    expect(await call(t.app, 'GET', '/ready')).toMatchObject({ status: 503, body: { status: 'unavailable', reason: 'database unavailable' } })
    expect((await call(t.app, 'GET', '/health')).status).toBe(200)
  })
})

describe('request lifecycle', () => {
  test('no onAfterResponse hook: Elysia runs those a turn later, keeping every request context (each WebSocket upgrade too) alive past the young generation', async () => {
    await using t = await testApp()
    // Timing, logging and tracing all finish in observeRequests' wrapper instead (bench/: memory).
    expect(t.app.event.afterResponse ?? []).toHaveLength(0)
  })
})
