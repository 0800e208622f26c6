import { describe, expect, test } from 'bun:test'
import { history, historyJson } from '../../src/messages/history'
import * as messages from '../../src/messages/service'
import * as users from '../../src/users/service'
import { testApp, type TestApp } from '../support/app'
import { account, call, conversation, type Account } from '../support/http'

/**
 * The REST API serves history as JSON that SQLite builds (historyJson), the web UI as objects
 * (history). Both must be the same page: the same messages in the same order, the same has_more,
 * and every field encoded exactly as JSON.stringify encodes the objects, so a client cannot tell.
 */

const historyText = async (t: TestApp, who: Account, conversationId: string, query: string) => {
  const reply = await t.app.handle(new Request(`http://localhost/conversations/${conversationId}/messages${query}`, { headers: { authorization: `Bearer ${who.token}` } }))
  return { status: reply.status, type: reply.headers.get('content-type'), text: await reply.text() }
}

/** Every page shape: newest, back from a seq, forward from a seq, between two, empty, at the ends. */
const SHAPES: Array<[string, Record<string, number>]> = [
  ['', {}],
  ['?limit=1', { limit: 1 }],
  ['?limit=7', { limit: 7 }],
  ['?limit=200', { limit: 200 }],
  ['?before=9', { before: 9 }],
  ['?before=9&limit=3', { before: 9, limit: 3 }],
  ['?before=2', { before: 2 }],
  ['?before=1', { before: 1 }],
  ['?after=0', { after: 0 }],
  ['?after=0&limit=4', { after: 0, limit: 4 }],
  ['?after=5&limit=3', { after: 5, limit: 3 }],
  ['?after=10&limit=50', { after: 10, limit: 50 }],
  ['?after=999', { after: 999 }],
  ['?after=2&before=8', { after: 2, before: 8 }],
  ['?after=2&before=8&limit=2', { after: 2, before: 8, limit: 2 }],
  ['?after=3&before=4', { after: 3, before: 4 }],
]

/** Content that JSON escapes, or that a careless encoder mangles. */
const AWKWARD = [
  'plain',
  'before\u0007after',
  Array.from({ length: 31 }, (_, i) => String.fromCharCode(i + 1)).join('') + '\u007F', // every control but NUL, which no engine stores
  '"quoted" \\back\\slash\\ /slash/ \'single\'',
  '😀👩‍👩‍👧‍👦🏳️‍🌈 𝕳𝖊𝖑𝖑𝖔 \u{10FFFF}',
  '\u2028line\u2029paragraph separators',
  '\uFEFFbom \u200Bzero width \u00A0nbsp \u202Eright-to-left',
  '<script>alert("x")</script> & </p>',
  'e\u0301 combining',
  '  spaces kept  \n\r\n\t',
  'x'.repeat(4000),
]

async function room(t: TestApp) {
  const alice = await account(t.app)
  const bob = await account(t.app)
  const direct = await conversation(t.app, alice, [bob])
  return { alice, bob, direct, actor: (await users.byId(t.deps.store, alice.id))! }
}

async function seed(t: TestApp, sender: Account, conversationId: string, contents: string[]) {
  const actor = (await users.byId(t.deps.store, sender.id))!
  for (const [i, content] of contents.entries()) await messages.post(t.deps, actor, { message_id: `m-${i}-"\\`, conversation_id: conversationId, content })
}

describe('history as JSON', () => {
  test('for every page shape, the REST body is exactly JSON.stringify of the service page, as application/json', async () => {
    await using t = await testApp()
    const { alice, direct, actor } = await room(t)
    await seed(t, alice, direct.id, AWKWARD)
    for (const [query, parsed] of SHAPES) {
      const expected = JSON.stringify(await history(t.deps.store, actor, direct.id, parsed))
      expect({ query, ...(await historyText(t, alice, direct.id, query)) }).toEqual({ query, status: 200, type: 'application/json;charset=utf-8', text: expected })
      expect(await historyJson(t.deps.store, actor, direct.id, parsed)).toBe(expected)
    }
  })

  test('every character survives: each content comes back as the very string that was posted', async () => {
    await using t = await testApp()
    const { alice, bob, direct } = await room(t)
    await seed(t, alice, direct.id, AWKWARD)
    const page = JSON.parse((await historyText(t, bob, direct.id, '?limit=200')).text)
    expect(page.messages.map((m: { content: string }) => m.content)).toEqual(AWKWARD)
    expect(page.messages.map((m: { message_id: string }) => m.message_id)).toEqual(AWKWARD.map((_, i) => `m-${i}-"\\`))
  })

  test('created_at reads as iso() writes it, for timestamps at the edges of a second, a day, a leap year and the format', async () => {
    await using t = await testApp()
    const { alice, direct, actor } = await room(t)
    const stamps = [0, 1, 999, 1000, 59_999, 86_399_999, 86_400_000, 951_782_400_000, 951_868_799_999, 1_709_164_800_123, 1_234_567_890_123, -1, -62_167_219_200_000, 253_402_300_799_999]
    await seed(t, alice, direct.id, stamps.map((s) => `at ${s}`))
    // Stored as if sent at those instants; before any page is read.
    for (const [i, stamp] of stamps.entries()) await t.sql('UPDATE messages SET created_at = ? WHERE conversation_id = ? AND seq = ?', stamp, direct.id, i + 1)
    const page = JSON.parse(await historyJson(t.deps.store, actor, direct.id, { limit: 200 }))
    expect(page.messages.map((m: { created_at: string }) => m.created_at)).toEqual(stamps.map((s) => new Date(s).toISOString()))
    expect(page).toEqual(await history(t.deps.store, actor, direct.id, { limit: 200 }))
  })

  test('edited_at and deleted_at read as iso() writes them when set, and as null when not', async () => {
    await using t = await testApp()
    const { alice, direct, actor } = await room(t)
    const stamps = [0, 999, 951_782_400_000, 1_709_164_800_123, 253_402_300_799_999]
    await seed(t, alice, direct.id, [...stamps.map((s) => `at ${s}`), 'untouched'])
    for (const [i, stamp] of stamps.entries()) {
      await t.sql('UPDATE messages SET edited_at = ?, deleted_at = ? WHERE conversation_id = ? AND seq = ?', stamp, i % 2 ? stamp + 1 : null, direct.id, i + 1)
    }
    const page = JSON.parse(await historyJson(t.deps.store, actor, direct.id, { limit: 200 }))
    expect(page.messages.map((m: { edited_at: string | null; deleted_at: string | null }) => [m.edited_at, m.deleted_at])).toEqual([
      ...stamps.map((s, i) => [new Date(s).toISOString(), i % 2 ? new Date(s + 1).toISOString() : null]),
      [null, null],
    ])
    expect(page).toEqual(await history(t.deps.store, actor, direct.id, { limit: 200 }))
  })

  test('has_more and order agree with the service when the range is exactly one page, one more, or one less', async () => {
    await using t = await testApp()
    const { alice, direct, actor } = await room(t)
    await seed(t, alice, direct.id, Array.from({ length: 12 }, (_, i) => `message ${i + 1}`))
    for (const limit of [11, 12, 13]) {
      for (const query of [{ limit }, { limit, after: 0 }, { limit, before: 13 }, { limit, after: 0, before: 13 }]) {
        const page = JSON.parse(await historyJson(t.deps.store, actor, direct.id, query))
        expect({ query, page }).toEqual({ query, page: await history(t.deps.store, actor, direct.id, query) })
        const size = Math.min(limit, 12)
        const first = 'after' in query ? 1 : 12 - size + 1 // forward from the oldest, or back from the newest
        expect(page.messages.map((m: { seq: number }) => m.seq)).toEqual(Array.from({ length: size }, (_, i) => first + i))
        expect(page.has_more).toBe(limit < 12)
      }
    }
  })

  test('it refuses exactly as history() does: 422 with the field, 403 for a non-member, 404 for no conversation', async () => {
    await using t = await testApp()
    const { direct, actor } = await room(t)
    const carol = (await users.byId(t.deps.store, (await account(t.app)).id))!
    const outcome = async (run: () => unknown) => {
      try {
        await run()
        return 'ok'
      } catch (error) {
        const { status, code, details } = error as { status: number; code: string; details?: Array<{ field: string }> }
        return { status, code, fields: details?.map((d) => d.field) }
      }
    }
    for (const [who, id, query] of [
      [actor, direct.id, { limit: 0 }],
      [actor, direct.id, { limit: 201 }],
      [actor, direct.id, { before: 0 }],
      [actor, direct.id, { after: -1 }],
      [actor, direct.id, { limit: 'ten' }],
      [carol, direct.id, {}],
      [actor, 'no-such-conversation', {}],
    ] as const) {
      const expected = await outcome(() => history(t.deps.store, who, id, query))
      expect(expected).not.toBe('ok')
      expect(await outcome(() => historyJson(t.deps.store, who, id, query))).toEqual(expected)
    }
  })

  test('the API docs still describe the page as a MessagePage', async () => {
    await using t = await testApp()
    const { body: spec } = await call(t.app, 'GET', '/docs/json')
    const schema = spec.paths['/conversations/{id}/messages'].get.responses['200'].content['application/json'].schema
    expect(Object.keys(schema.properties)).toEqual(['messages', 'has_more'])
    expect(Object.keys(schema.properties.messages.items.properties)).toEqual(['id', 'message_id', 'sender_id', 'conversation_id', 'content', 'created_at', 'seq', 'edited_at', 'deleted_at', 'reply_to', 'reactions'])
  })
})
