import { describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { sqliteOf, listen, testApp, type TestApp } from './support/app'
import { account, call, conversation, send, type Account } from './support/http'
import { TestSocket } from './support/ws'

// Bounded runs: enough to find the usual mistakes, quick enough for every CI run.
const RUNS = 60

/** The strings people and attackers actually send: RTL overrides, NUL, lone surrogates, emoji, combining marks. */
const EDGE_STRINGS = ['\u202Egnp.exe', 'a\u0000b', '\uD800', 'x\uDC00y', '😀🏳️‍🌈👩🏽‍💻', 'e\u0301\u0302\u0303', '\uFEFF', ' ', '', '<script>alert(1)</script>', '%00', '\\u0000']
const nasty = fc.oneof(fc.string({ unit: 'binary', maxLength: 64 }), fc.constantFrom(...EDGE_STRINGS))
const nastyValue = fc.oneof(
  nasty,
  fc.integer(),
  fc.double(),
  fc.constantFrom(1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 0, -0),
  fc.boolean(),
  fc.constant(null),
  fc.array(nasty, { maxLength: 4 }),
  fc.dictionary(nasty, nasty, { maxKeys: 3 }),
)
/** An object shaped like the real body (the right field names), with wrong or hostile values and extra fields. */
const nearMiss = (fields: string[]) => fc.record(Object.fromEntries([...fields, 'extra', '__proto__'].map((f) => [f, nastyValue])), { requiredKeys: [] })

type Case = { method: string; path: (ids: Ids) => string; body: fc.Arbitrary<unknown>; auth: boolean }
type Ids = { conversation: string; user: string }

const ROUTES: Case[] = [
  { method: 'POST', path: () => '/auth/signup', body: nearMiss(['username', 'password', 'full_name']), auth: false },
  { method: 'POST', path: () => '/auth/login', body: nearMiss(['username', 'password']), auth: false },
  { method: 'POST', path: () => '/auth/refresh', body: nearMiss(['refresh_token']), auth: false },
  { method: 'POST', path: () => '/conversations', body: nearMiss(['title', 'member_ids']), auth: true },
  { method: 'POST', path: () => '/messages', body: nearMiss(['message_id', 'conversation_id', 'content', 'sender_id']), auth: true },
  { method: 'POST', path: () => '/auth/logout', body: fc.jsonValue(), auth: false },
]

/** What a server must never do with bad input: answer 5xx, or answer an error outside the one shape. */
async function expectGraceful(reply: { status: number; body: any }) {
  expect(reply.status).toBeLessThan(500)
  if (reply.status >= 400) expect(reply.body).toEqual({ error: expect.objectContaining({ code: expect.any(String), message: expect.any(String) }) })
  if (reply.status === 422) expectReadable(reply.body.error)
}

/** A validation message in words: each field named and what is wrong with it, none of the validator's own phrasing. */
function expectReadable(error: { message: string; details?: Array<{ field: string; message: string }> }) {
  expect(error.message).not.toMatch(/Expected|Property '|to match '/)
  for (const d of error.details ?? []) expect(error.message).toContain(`${d.field} ${d.message}`)
}

async function world(t: TestApp): Promise<{ alice: Account; ids: Ids }> {
  const alice = await account(t.app)
  const bob = await account(t.app)
  const direct = await conversation(t.app, alice, [bob])
  return { alice, ids: { conversation: direct.id, user: bob.id } }
}

describe('random and malformed input never breaks a route', () => {
  test.each(ROUTES.map((r) => [`${r.method} ${r.path({ conversation: ':id', user: ':user' })}`, r] as const))('%s: JSON bodies of every shape', async (_, route) => {
    await using t = await testApp()
    const { alice, ids } = await world(t)
    await fc.assert(
      fc.asyncProperty(fc.oneof(route.body, fc.jsonValue()), async (body) => {
        await expectGraceful(await call(t.app, route.method, route.path(ids), { token: route.auth ? alice.token : undefined, body }))
      }),
      { numRuns: RUNS },
    )
  }, 60_000)

  test.each(ROUTES.map((r) => [`${r.method} ${r.path({ conversation: ':id', user: ':user' })}`, r] as const))('%s: bodies that are not JSON at all', async (_, route) => {
    await using t = await testApp()
    const { alice, ids } = await world(t)
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 200 }), async (raw) => {
        await expectGraceful(await call(t.app, route.method, route.path(ids), { token: route.auth ? alice.token : undefined, raw }))
      }),
      { numRuns: RUNS },
    )
  }, 60_000)

  test('GET /conversations/:id/messages: any id and query string', async () => {
    await using t = await testApp()
    const { alice, ids } = await world(t)
    // Lone surrogates cannot be percent-encoded: send them as the invalid UTF-8 a client could send.
    const encode = (s: string) => (s.isWellFormed() ? encodeURIComponent(s) : `%ED%A0%80${encodeURIComponent(s.toWellFormed())}`)
    const broken = fc.constantFrom('%', '%FF', '%ED%A0%80', '%zz')
    const queryValue = fc.oneof(fc.oneof(fc.integer(), fc.double(), nasty).map((v) => encode(String(v))), broken)
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.constant(ids.conversation), nasty.map(encode), broken), queryValue, queryValue, queryValue, async (id, limit, before, after) => {
        if (id === '') return
        await expectGraceful(await call(t.app, 'GET', `/conversations/${id}/messages?limit=${limit}&before=${before}&after=${after}`, { token: alice.token }))
      }),
      { numRuns: RUNS },
    )
  }, 60_000)
})

describe('content round-trips byte-exactly', () => {
  test('any well-formed text of 1–4000 characters comes back exactly as sent, in the reply and in the history', async () => {
    await using t = await testApp()
    const { alice, ids } = await world(t)
    const text = fc.oneof(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 300 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 300 }), fc.constantFrom(...EDGE_STRINGS))
    let sent = 0
    await fc.assert(
      fc.asyncProperty(text, async (content) => {
        const valid = content.isWellFormed() && content.trim() !== ''
        const reply = await send(t.app, alice, ids.conversation, content)
        if (!valid) {
          expect(reply.status).toBe(422)
          return
        }
        expect(reply.status).toBe(201)
        expect(reply.body.content).toBe(content)
        sent++
        const history = await call(t.app, 'GET', `/conversations/${ids.conversation}/messages?after=${reply.body.seq - 1}&limit=1`, { token: alice.token })
        expect(history.body.messages[0].content).toBe(content)
      }),
      { numRuns: RUNS },
    )
    expect(sent).toBeGreaterThan(0)
    expect(sqliteOf(t).sqlite.query('PRAGMA integrity_check').get()).toEqual({ integrity_check: 'ok' })
  }, 60_000)
})

describe('random WebSocket frames', () => {
  test('every frame gets a message or an error frame, never internal_error, and the socket stays open', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const { alice, ids } = await world(t)
    using socket = await TestSocket.open(`${ws}?token=${alice.token}`)
    const frame = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      nearMiss(['message_id', 'conversation_id', 'content']).map((f) => JSON.stringify({ type: 'message', ...f })),
      fc.record({ type: fc.constantFrom('join', 'message', 'ping', 'nope'), conversation_id: fc.oneof(fc.constant(ids.conversation), nasty) }).map((f) => JSON.stringify(f)),
    )
    await fc.assert(
      fc.asyncProperty(frame, async (data) => {
        socket.send(data)
        // Every frame is answered: drain up to the pong and look at what came before it.
        for (const reply of await socket.drain()) {
          expect(['message', 'error', 'joined', 'pong']).toContain(reply.type)
          if (reply.type === 'error') expect(reply.error.code).not.toBe('internal_error')
          if (reply.type === 'error' && reply.error.code === 'validation_failed') expectReadable(reply.error)
        }
      }),
      { numRuns: RUNS * 2 },
    )
    socket.send({ type: 'ping' })
    expect(await socket.nextOfType('pong')).toEqual({ type: 'pong' })
  }, 60_000)
})

describe('oversized bodies', () => {
  test('20 MB streamed without a length is refused with 413, and the server stays healthy', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const chunk = new Uint8Array(1024 * 1024).fill(0x61)
    let sentChunks = 0
    const body = new ReadableStream({
      pull(controller) {
        if (sentChunks++ >= 20) return controller.close()
        controller.enqueue(chunk)
      },
    })
    const reply = await fetch(`${http}/auth/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, duplex: 'half' } as RequestInit).catch((error) => error)
    // Bun refuses past its hard cap (1 MiB) without reading on: a 413, or the connection closed on us.
    if (reply instanceof Response) expect(reply.status).toBe(413)
    expect(sentChunks).toBeLessThan(20)
    expect((await fetch(`${http}/health`)).status).toBe(200)
  }, 30_000)
})
