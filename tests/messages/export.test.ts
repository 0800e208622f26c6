import { describe, expect, test } from 'bun:test'
import { EXPORT_PAGE_MESSAGES } from '../../src/messages/export'
import { history } from '../../src/messages/history'
import * as users from '../../src/users/service'
import { captureLogs, listen, testApp, type TestApp } from '../support/app'
import { fillConversation } from '../support/fill'
import { account, call, conversation, send, type Account } from '../support/http'

/**
 * GET /conversations/{id}/export: every message of a conversation, oldest first, one JSON object
 * per line, each the Message a history page shows; members only; streamed a page at a time as the
 * client reads (see tests/messages/export-memory.test.ts for what that costs in memory).
 */

const exportPath = (conversationId: string) => `/conversations/${conversationId}/export`

/** The export through app.handle, its body read whole. */
async function exported(t: TestApp, who: Account | undefined, conversationId: string) {
  const reply = await t.app.handle(new Request(`http://localhost${exportPath(conversationId)}`, { headers: who ? { authorization: `Bearer ${who.token}` } : {} }))
  return { status: reply.status, headers: reply.headers, text: await reply.text() }
}

/** An export's lines, each parsed; an empty body is no line. */
const linesOf = (text: string): any[] => (text === '' ? [] : text.replace(/\n$/, '').split('\n').map((line) => JSON.parse(line)))

/** Every message of the conversation as history pages show it, oldest first, read page by page through the service. */
async function allHistory(t: TestApp, who: Account, conversationId: string) {
  const actor = (await users.byId(t.deps.store, who.id))!
  const all = []
  for (let after = 0; ; ) {
    const page = await history(t.deps.store, actor, conversationId, { after, limit: 200 })
    all.push(...page.messages)
    if (!page.has_more) return all
    after = page.messages.at(-1)!.seq
  }
}

/** Content that JSON escapes, that splits lines, or that looks like NDJSON itself. */
const HOSTILE = [
  'line one\nline two\r\nline three\rend',
  '{"seq":0,"content":"forged"}\n{"id":"x"}',
  '"quoted" \\back\\slash\\ /slash/ \'single\'',
  Array.from({ length: 31 }, (_, i) => String.fromCharCode(i + 1)).join('') + '\u007F',
  '\u2028line\u2029paragraph separators',
  '😀👩‍👩‍👧‍👦🏳️‍🌈 \u{10FFFF} \uFEFFbom \u202Eright-to-left',
  '<script>alert("x")</script> & </p>',
  'x'.repeat(4000),
]

describe('GET /conversations/{id}/export', () => {
  test('refuses exactly as the history does: 401 without or with a bad token, 403 for a non-member, 404 for no such conversation', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const carol = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    await send(t.app, alice, direct.id, 'private')
    const forged = { ...carol, token: `${carol.token}x` }
    const cases: Array<[string, Account | undefined, string, number]> = [
      ['no credentials', undefined, direct.id, 401],
      ['a bad token', forged, direct.id, 401],
      ['a non-member', carol, direct.id, 403],
      ['an unknown conversation', alice, crypto.randomUUID(), 404],
      ['an id no conversation can have', alice, '%20%22%3Cx%3E', 404],
    ]
    for (const [who, caller, id, status] of cases) {
      const reply = await exported(t, caller, id)
      const historyReply = await call(t.app, 'GET', `/conversations/${id}/messages`, caller ? { token: caller.token } : {})
      expect({ who, status: reply.status, body: JSON.parse(reply.text), type: reply.headers.get('content-type') }).toEqual({
        who,
        status,
        body: historyReply.body,
        type: 'application/json;charset=utf-8',
      })
      expect(historyReply.status).toBe(status)
      expect(reply.text).not.toContain('private')
    }
  })

  test('a member gets NDJSON to download: every message as history shows it, oldest first, with its edit, deletion, reactions and reply', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const carol = await account(t.app)
    const group = (await call(t.app, 'POST', '/conversations', { token: alice.token, body: { title: 'Team', member_ids: [bob.id, carol.id] } })).body
    const first = (await send(t.app, alice, group.id, 'first')).body
    const edited = (await send(t.app, bob, group.id, 'before the edit')).body
    expect((await call(t.app, 'PATCH', `/messages/${edited.id}`, { token: bob.token, body: { content: 'after the edit' } })).status).toBe(200)
    const reply = (await call(t.app, 'POST', '/messages', { token: carol.token, body: { message_id: 'reply', conversation_id: group.id, content: 'answering', reply_to: first.id } })).body
    const deleted = (await send(t.app, carol, group.id, 'soon gone, secret words')).body
    const react = (who: Account, id: string, emoji: string) => call(t.app, 'PUT', `/messages/${id}/reactions/${encodeURIComponent(emoji)}`, { token: who.token })
    for (const [who, id, emoji] of [[bob, first.id, '👍'], [carol, first.id, '🎉'], [alice, first.id, '👍'], [alice, deleted.id, '👍']] as const) expect((await react(who, id, emoji)).status).toBe(204)
    expect((await call(t.app, 'DELETE', `/messages/${deleted.id}`, { token: carol.token })).status).toBe(204)

    const { status, headers, text } = await exported(t, bob, group.id)
    expect(status).toBe(200)
    expect(headers.get('content-type')).toBe('application/x-ndjson')
    expect(headers.get('content-disposition')).toBe(`attachment; filename="conversation-${group.id}.ndjson"`)
    expect(headers.get('cache-control')).toBe('no-store')
    // Exactly the history's messages, each as JSON.stringify writes it, one per line, each line ended.
    const all = await allHistory(t, bob, group.id)
    expect(text).toBe(all.map((m) => `${JSON.stringify(m)}\n`).join(''))
    const lines = linesOf(text)
    expect(lines.map((m) => [m.seq, m.content])).toEqual([
      [1, 'first'],
      [2, 'after the edit'],
      [3, 'answering'],
      [4, ''],
    ])
    expect(lines[0].reactions).toEqual([
      { emoji: '👍', user_ids: [bob.id, alice.id] },
      { emoji: '🎉', user_ids: [carol.id] },
    ])
    expect(lines[1]).toMatchObject({ id: edited.id, edited_at: expect.stringMatching(/Z$/), deleted_at: null })
    expect(lines[2]).toMatchObject({ id: reply.id, reply_to: first.id, sender_id: carol.id, message_id: 'reply' })
    expect(lines[3]).toMatchObject({ id: deleted.id, content: '', deleted_at: expect.stringMatching(/Z$/), reactions: [] })
    expect(text).not.toContain('secret words')
    expect(text).not.toContain('before the edit')
  })

  test('hostile content round-trips exactly: each line parses to the very string sent, and no content adds a line', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    for (const [i, content] of HOSTILE.entries()) {
      const sent = await call(t.app, 'POST', '/messages', { token: alice.token, body: { message_id: `m-${i}-"\\<>{}`, conversation_id: direct.id, content } })
      expect(sent.status).toBe(201)
    }
    const { text } = await exported(t, bob, direct.id)
    expect(text.split('\n')).toHaveLength(HOSTILE.length + 1)
    const lines = linesOf(text)
    expect(lines.map((m) => m.content)).toEqual(HOSTILE)
    expect(text).toBe((await allHistory(t, bob, direct.id)).map((m) => `${JSON.stringify(m)}\n`).join(''))
  })

  test('an empty conversation is an empty body, still NDJSON to download', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    const { status, headers, text } = await exported(t, alice, direct.id)
    expect({ status, type: headers.get('content-type'), disposition: headers.get('content-disposition'), text }).toEqual({
      status: 200,
      type: 'application/x-ndjson',
      disposition: `attachment; filename="conversation-${direct.id}.ndjson"`,
      text: '',
    })
  })

  test(`across pages of ${EXPORT_PAGE_MESSAGES}: every seq once, in order, whether the last page is full, one short or one over`, async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    let total = 0
    for (const count of [1, EXPORT_PAGE_MESSAGES - 1, EXPORT_PAGE_MESSAGES, EXPORT_PAGE_MESSAGES + 1, 2 * EXPORT_PAGE_MESSAGES + 1]) {
      const group = (await call(t.app, 'POST', '/conversations', { token: alice.token, body: { title: `${count}`, member_ids: [bob.id] , is_group: true } })).body
      await fillConversation(t.sql, group.id, alice.id, count, 'filler')
      const lines = linesOf((await exported(t, bob, group.id)).text)
      expect({ count, seqs: lines.map((m) => m.seq) }).toEqual({ count, seqs: Array.from({ length: count }, (_, i) => i + 1) })
      expect(lines.every((m, i) => m.content === `#${i + 1} filler` && m.conversation_id === group.id)).toBe(true)
      total += count
    }
    expect(total).toBeGreaterThan(3 * EXPORT_PAGE_MESSAGES)
  })

  test('it holds the messages up to the last one sent when it began: ones sent while it is being read are not in it', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    await fillConversation(t.sql, direct.id, alice.id, 2 * EXPORT_PAGE_MESSAGES + 10)
    const reply = await t.app.handle(new Request(`http://localhost${exportPath(direct.id)}`, { headers: { authorization: `Bearer ${bob.token}` } }))
    const reader = reply.body!.getReader()
    const first = await reader.read()
    expect(first.done).toBe(false)
    for (let i = 0; i < 3; i++) expect((await send(t.app, bob, direct.id, `later ${i}`)).status).toBe(201)
    const rest = await new Response(new ReadableStream({ pull: async (c) => { const { done, value } = await reader.read(); if (done) c.close(); else c.enqueue(value) } })).text()
    const lines = linesOf(new TextDecoder().decode(first.value) + rest)
    expect(lines.map((m) => m.seq)).toEqual(Array.from({ length: 2 * EXPORT_PAGE_MESSAGES + 10 }, (_, i) => i + 1))
    // The later ones are there for the next export.
    expect(linesOf((await exported(t, bob, direct.id)).text).slice(-3).map((m) => m.content)).toEqual(['later 0', 'later 1', 'later 2'])
  })
})

test('the API docs describe it: NDJSON of Messages, and the error statuses as JSON', async () => {
  await using t = await testApp()
  const spec = (await call(t.app, 'GET', '/docs/json')).body
  const operation = spec.paths['/conversations/{id}/export'].get
  expect(operation.tags).toEqual(['conversations'])
  expect(operation.summary).toContain('NDJSON')
  expect(operation.security).toBeUndefined() // the bearer token, as every route but the public ones
  expect(Object.keys(operation.responses).sort()).toEqual(['200', '401', '403', '404'])
  expect(Object.keys(operation.responses['200'].content)).toEqual(['application/x-ndjson'])
  expect(Object.keys(operation.responses['200'].content['application/x-ndjson'].schema.properties)).toEqual([
    'id', 'message_id', 'sender_id', 'conversation_id', 'content', 'created_at', 'seq', 'edited_at', 'deleted_at', 'reply_to', 'reactions',
  ])
  expect(operation.responses['403'].content['application/json'].schema.properties.error.required).toEqual(['code', 'message'])
  expect(operation.parameters.map((p: { name: string; in: string }) => [p.name, p.in])).toEqual([['id', 'path']])
})

/**
 * Over a real socket, with an export far larger than the socket's buffers (so the server is held
 * back by the client, which reads one chunk and then stops).
 */
describe('an export cut short', () => {
  const MESSAGES = 20_000
  const FILLER = 'y'.repeat(1000)

  /** A test app listening, its logs kept, with a group of alice and bob of MESSAGES messages, and its store's export pages counted. */
  async function bigExport() {
    const logs = captureLogs()
    const t = await testApp({}, { logger: logs.logger })
    const base = listen(t.app).http
    const alice = await account(t.app)
    const bob = await account(t.app)
    const group = (await call(t.app, 'POST', '/conversations', { token: alice.token, body: { title: 'Big', member_ids: [bob.id], is_group: true } })).body
    await fillConversation(t.sql, group.id, alice.id, MESSAGES, FILLER)
    const store = t.deps.store.messages
    const read = store.exportPage.bind(store)
    const pages = { read: 0 }
    store.exportPage = (range) => (pages.read++, read(range))
    const abort = new AbortController()
    const reply = await fetch(`${base}${exportPath(group.id)}`, { headers: { authorization: `Bearer ${bob.token}` }, signal: abort.signal })
    expect(reply.status).toBe(200)
    const reader = reply.body!.getReader()
    const first = await reader.read()
    expect(first.done).toBe(false)
    return { t, logs, base, alice, bob, group, reader, abort, pages, received: first.value!.byteLength }
  }

  /** Reads on until the body ends or fails: how many bytes came, and the failure, if any. */
  async function readRest(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<{ bytes: number; error: unknown }> {
    let bytes = 0
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return { bytes, error: null }
        bytes += value.byteLength
      }
    } catch (error) {
      return { bytes, error }
    }
  }

  test('a client that goes away stops the reading: the stream is cancelled, logged with what was sent, and no page is read after', async () => {
    const { t, logs, abort, pages } = await bigExport()
    await using _ = t
    abort.abort()
    const line = await logs.waitFor((l) => l.msg === 'export stopped: the client went away')
    expect(line.messages).toBeGreaterThan(0)
    expect(line.messages).toBeLessThan(MESSAGES)
    // At most the page being read when it was cancelled beyond those sent; and none since.
    expect(pages.read).toBeLessThanOrEqual(line.messages / EXPORT_PAGE_MESSAGES + 1)
    const readThen = pages.read
    expect((await call(t.app, 'GET', '/health')).status).toBe(200)
    expect(pages.read).toBe(readThen)
    expect(logs.lines.filter((l) => l.msg === 'conversation exported')).toEqual([])
  }, 30_000)

  test('a database failure mid-stream resets the connection without the end of the body, is logged, and the server goes on', async () => {
    const { t, logs, base, bob, group, reader, received } = await bigExport()
    await using _ = t
    // Every page read from now on fails, on either engine.
    await t.sql('ALTER TABLE messages RENAME TO messages_away')
    const rest = await readRest(reader)
    expect(rest.error).toBeTruthy()
    const line = await logs.waitFor((l) => l.msg === 'export failed')
    expect(line.level).toBe('error')
    expect(line.err).toBeDefined()
    expect(line.messages).toBeLessThan(MESSAGES)
    // What reached the client is at most what was sent before the failure: never the whole.
    expect(received + rest.bytes).toBeLessThanOrEqual(line.bytes)
    await t.sql('ALTER TABLE messages_away RENAME TO messages')
    // The same export again, whole.
    const again = await fetch(`${base}${exportPath(group.id)}`, { headers: { authorization: `Bearer ${bob.token}` } })
    expect(linesOf(await again.text())).toHaveLength(MESSAGES)
    await logs.waitFor((l) => l.msg === 'conversation exported' && l.messages === MESSAGES)
  }, 30_000)

  test('a reader removed from the group mid-stream gets no more of it: the connection is reset and the stop logged', async () => {
    const { t, logs, alice, bob, group, reader, received } = await bigExport()
    await using _ = t
    expect((await call(t.app, 'DELETE', `/conversations/${group.id}/members/${bob.id}`, { token: alice.token })).status).toBe(204)
    const rest = await readRest(reader)
    expect(rest.error).toBeTruthy()
    const line = await logs.waitFor((l) => l.msg === 'export stopped: no longer a member')
    expect(line).toMatchObject({ conversation_id: group.id, user_id: bob.id })
    expect(line.messages).toBeLessThan(MESSAGES)
    expect(received + rest.bytes).toBeLessThanOrEqual(line.bytes)
  }, 30_000)
})
