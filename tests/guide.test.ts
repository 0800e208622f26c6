/**
 * The user guide (shared/seed/pneumatic-user-guide.md) as a client written against it sees the
 * server: every API example, in the guide's order, with the guide's request bodies (placeholders
 * replaced by real ids), against a real server process with the default configuration, default
 * rate limits included. Each step asserts the status and fields the guide documents.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServer, type ServerProcess } from './support/process'
import { TestSocket } from './support/ws'

let server: ServerProcess
let dir: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pneumatic-guide-'))
  // Nothing but where the data lives: every other setting is the default.
  server = await startServer({ DATABASE_URL: `sqlite:${join(dir, 'pneumatic.db')}` })
})

afterAll(async () => {
  server.process.kill('SIGTERM')
  await server.process.exited
  rmSync(dir, { recursive: true, force: true })
})

type Reply = { status: number; body: any }

/** A request as the guide's curl examples make it: JSON in and out, a bearer token when given. */
async function request(method: string, path: string, opts: { token?: string; body?: unknown } = {}): Promise<Reply> {
  const headers: Record<string, string> = {}
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json'
  const response = await fetch(server.base + path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) })
  const text = await response.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {}
  return { status: response.status, body }
}

const TOKEN_PAIR = { access_token: expect.any(String), refresh_token: expect.any(String), token_type: 'bearer' }
const ISO = expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/)

/** What the steps learn and later steps use, as a client would keep it. */
const the = {} as {
  alice: { id: string; token: string; refresh: string }
  bob: { id: string; token: string }
  carol: { id: string }
  team: string
  direct: string
}

describe('the user guide, example by example, against the default server', () => {
  test('Sign Up: 201 with id, username and full_name', async () => {
    const reply = await request('POST', '/auth/signup', { body: { username: 'alice', password: 'password123', full_name: 'Alice Smith' } })
    expect(reply).toEqual({ status: 201, body: { id: expect.any(String), username: 'alice', full_name: 'Alice Smith' } })
    // Full Name is optional.
    const bob = await request('POST', '/auth/signup', { body: { username: 'bob', password: 'password123', full_name: 'Bob Smith' } })
    const carol = await request('POST', '/auth/signup', { body: { username: 'carol', password: 'password123' } })
    expect(bob.status).toBe(201)
    expect(carol).toEqual({ status: 201, body: { id: expect.any(String), username: 'carol', full_name: null } })
    the.alice = { id: reply.body.id, token: '', refresh: '' }
    the.bob = { id: bob.body.id, token: '' }
    the.carol = { id: carol.body.id }
  })

  test('Login: 200 with access_token, refresh_token and token_type "bearer"', async () => {
    const reply = await request('POST', '/auth/login', { body: { username: 'alice', password: 'password123' } })
    expect(reply).toEqual({ status: 200, body: TOKEN_PAIR })
    the.alice.token = reply.body.access_token
    the.alice.refresh = reply.body.refresh_token
    const bob = await request('POST', '/auth/login', { body: { username: 'bob', password: 'password123' } })
    expect(bob.status).toBe(200)
    the.bob.token = bob.body.access_token
  })

  test('Refresh Token: 200 with a new pair, and the new access token works', async () => {
    const reply = await request('POST', '/auth/refresh', { body: { refresh_token: the.alice.refresh } })
    expect(reply).toEqual({ status: 200, body: TOKEN_PAIR })
    expect(reply.body.access_token).not.toBe(the.alice.token)
    the.alice.token = reply.body.access_token
    the.alice.refresh = reply.body.refresh_token
  })

  test('GET /auth/me: 200 with the current user', async () => {
    expect(await request('GET', '/auth/me', { token: the.alice.token })).toEqual({
      status: 200,
      body: { id: the.alice.id, username: 'alice', full_name: 'Alice Smith' },
    })
  })

  test('GET /users: 200 with every registered user but the current one', async () => {
    const reply = await request('GET', '/users', { token: the.alice.token })
    expect(reply.status).toBe(200)
    expect(reply.body.users).toEqual([
      { id: the.bob.id, username: 'bob', full_name: 'Bob Smith', online: false, last_seen_at: null },
      { id: the.carol.id, username: 'carol', full_name: null, online: false, last_seen_at: null },
    ])
  })

  test('Group Conversations: POST /conversations with a title is 201, the current user added as a member', async () => {
    const reply = await request('POST', '/conversations', { token: the.alice.token, body: { title: 'Project Team', member_ids: [the.bob.id, the.carol.id] } })
    // Kept before any asymmetric matcher sees the body: Bun 1.4.5's toMatchObject writes the matchers into it.
    the.team = reply.body.id
    expect(reply.status).toBe(201)
    expect(reply.body).toMatchObject({ id: expect.any(String), title: 'Project Team', members: [the.alice.id, the.bob.id, the.carol.id] })
  })

  test('1-on-1 Conversations: no duplicates, the existing one is reused from either side, both 201', async () => {
    const first = await request('POST', '/conversations', { token: the.alice.token, body: { title: 'Chat', member_ids: [the.bob.id] } })
    const again = await request('POST', '/conversations', { token: the.alice.token, body: { title: 'Chat', member_ids: [the.bob.id] } })
    const fromBob = await request('POST', '/conversations', { token: the.bob.token, body: { title: 'Chat', member_ids: [the.alice.id] } })
    the.direct = first.body.id
    for (const reply of [first, again, fromBob]) {
      expect(reply.status).toBe(201)
      expect(reply.body).toMatchObject({ id: first.body.id, members: [the.alice.id, the.bob.id] })
    }
    // "Automatically shows the other person's name"
    expect(first.body.display_name).toBe('Bob Smith')
    expect(fromBob.body.display_name).toBe('Alice Smith')
  })

  test('GET /conversations: 200 with each conversation, its title and members', async () => {
    const reply = await request('GET', '/conversations', { token: the.bob.token })
    expect(reply.status).toBe(200)
    expect(reply.body.conversations).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: the.team, title: 'Project Team', members: [the.alice.id, the.bob.id, the.carol.id] }),
        expect.objectContaining({ id: the.direct, members: [the.alice.id, the.bob.id] }),
      ]),
    )
    expect(reply.body.conversations).toHaveLength(2)
  })

  test('Via HTTP API: POST /messages with sender_id is 201 with the message; a duplicate message_id stores nothing new', async () => {
    const body = { message_id: 'unique-id-123', sender_id: the.alice.id, conversation_id: the.team, content: 'Hello from API!' }
    const reply = await request('POST', '/messages', { token: the.alice.token, body })
    const stored = structuredClone(reply.body)
    expect(reply).toEqual({
      status: 201,
      body: {
        id: expect.any(String),
        message_id: 'unique-id-123',
        sender_id: the.alice.id,
        conversation_id: the.team,
        content: 'Hello from API!',
        created_at: ISO,
        seq: 1,
        // Added by later issues; a client of the guide ignores them.
        edited_at: null,
        deleted_at: null,
        reply_to: null,
        reactions: [],
      },
    })
    expect(await request('POST', '/messages', { token: the.alice.token, body })).toEqual({ status: 201, body: stored })
  })

  test('Via WebSocket: two users join, one sends, both receive the message frame', async () => {
    const ws = server.base.replace('http', 'ws')
    using alice = await TestSocket.open(`${ws}/ws?token=${the.alice.token}`)
    using bob = await TestSocket.open(`${ws}/ws?token=${the.bob.token}`)
    alice.send({ type: 'join', conversation_id: the.team })
    bob.send({ type: 'join', conversation_id: the.team })
    await alice.nextOfType('joined')
    await bob.nextOfType('joined')
    const messageId = crypto.randomUUID()
    alice.send({ type: 'message', message_id: messageId, conversation_id: the.team, content: 'Hello!' })
    const expected = {
      type: 'message',
      message: { id: expect.any(String), message_id: messageId, sender_id: the.alice.id, conversation_id: the.team, content: 'Hello!', created_at: ISO, seq: 2, edited_at: null, deleted_at: null, reply_to: null, reactions: [] },
      // Added by the change stream (issue 17); a client of the guide ignores them.
      conversation_id: the.team,
      event_seq: 2,
    }
    expect(await alice.nextOfType('message')).toEqual(expected)
    expect(await bob.nextOfType('message')).toEqual(expected)
  })

  test('GET /conversations/{conv_id}/messages with limit: 200 with the newest messages', async () => {
    const all = await request('GET', `/conversations/${the.team}/messages`, { token: the.bob.token })
    expect(all.status).toBe(200)
    expect(all.body.messages.map((m: { content: string }) => m.content)).toEqual(['Hello from API!', 'Hello!'])
    const one = await request('GET', `/conversations/${the.team}/messages?limit=1`, { token: the.bob.token })
    expect(one.status).toBe(200)
    expect(one.body.messages).toEqual([expect.objectContaining({ message_id: expect.any(String), sender_id: the.alice.id, content: 'Hello!', created_at: ISO })])
  })

  test('Health, readiness and metrics', async () => {
    expect(await request('GET', '/health')).toEqual({ status: 200, body: { status: 'healthy' } })
    expect(await request('GET', '/ready')).toEqual({ status: 200, body: { status: 'ready' } })
    const metrics = await request('GET', '/metrics')
    expect(metrics.status).toBe(200)
    for (const name of [
      'pneumatic_websocket_connections_total',
      'pneumatic_websocket_connections_active',
      'pneumatic_messages_sent_total',
      'pneumatic_messages_per_second',
    ]) {
      expect(metrics.body).toMatch(new RegExp(`^${name} \\d`, 'm'))
    }
    expect(metrics.body).toMatch(/^pneumatic_messages_sent_total 2$/m)
  })
})
