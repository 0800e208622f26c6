import { describe, expect, test } from 'bun:test'
import * as conversations from '../../src/conversations/service'
import * as messages from '../../src/messages/service'
import type { DomainError } from '../../src/shared/errors'
import type { User } from '../../src/users/model'
import { testApp, type TestApp } from '../support/app'
import { events, rejected, thrown, user } from '../support/services'

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

const brief = (e: DomainError) => ({ status: e.status, code: e.code, fields: e.details?.map((d) => d.field) })

const messageCount = async (t: TestApp) => (await t.sql<{ n: number }>('SELECT count(*) AS n FROM messages'))[0]!.n

/** Alice and Bob share a 1-on-1; Carol is not in it. */
async function setup(t: TestApp) {
  const alice = await user(t)
  const bob = await user(t)
  const carol = await user(t)
  const direct = (await conversations.create(t.deps, alice, { member_ids: [bob.id] })).conversation
  return { alice, bob, carol, direct }
}

describe('messages.post', () => {
  test('stores, numbers and returns the message with created true', async () => {
    await using t = await testApp()
    const { alice, direct } = await setup(t)
    const result = await messages.post(t.deps, alice, { message_id: 'k1', conversation_id: direct.id, content: 'hello' })
    expect(result).toEqual({
      created: true,
      message: { id: expect.any(String), message_id: 'k1', sender_id: alice.id, conversation_id: direct.id, content: 'hello', created_at: expect.stringMatching(ISO), seq: 1, edited_at: null, deleted_at: null, reply_to: null, reactions: [] },
    })
    const stored = (await t.sql('SELECT id, seq, sender_id, message_id, content, created_at FROM messages'))
    expect(stored).toEqual([
      { id: result.message.id, seq: 1, sender_id: alice.id, message_id: 'k1', content: 'hello', created_at: Date.parse(result.message.created_at) },
    ])
  })

  test("moves the conversation's last_seq and last_message_at", async () => {
    await using t = await testApp()
    const { alice, bob, direct } = await setup(t)
    await messages.post(t.deps, alice, { message_id: 'a', conversation_id: direct.id, content: 'one' })
    const { message } = await messages.post(t.deps, bob, { message_id: 'b', conversation_id: direct.id, content: 'two' })
    expect(await conversations.get(t.deps.store, alice, direct.id)).toEqual({ ...direct, lastSeq: 2, lastEventSeq: 2, lastMessageAt: Date.parse(message.created_at) })
  })

  test('seq is 1, 2, 3 per conversation, independent across conversations', async () => {
    await using t = await testApp()
    const { alice, bob, carol, direct } = await setup(t)
    const group = (await conversations.create(t.deps, carol, { title: 'G', member_ids: [alice.id], is_group: true })).conversation
    const post = async (who: User, conversationId: string, key: string) => (await messages.post(t.deps, who, { message_id: key, conversation_id: conversationId, content: key })).message.seq
    expect([await post(alice, direct.id, '1'), await post(alice, group.id, '2'), await post(bob, direct.id, '3'), await post(carol, group.id, '4'), await post(alice, direct.id, '5')]).toEqual([
      1, 1, 2, 2, 3,
    ])
  })

  test('announces each stored message once, a retry only as a check of the conversation, and nothing for a refusal', async () => {
    await using t = await testApp()
    const { alice, carol, direct } = await setup(t)
    const seen = events(t)
    const input = { message_id: 'k', conversation_id: direct.id, content: 'hi' }
    const { message } = await messages.post(t.deps, alice, input)
    await messages.post(t.deps, alice, input)
    await rejected(messages.post(t.deps, alice, { ...input, content: 'other' }))
    await rejected(messages.post(t.deps, carol, { ...input, message_id: 'c' }))
    expect(seen).toEqual([
      { type: 'conversation.changed', change: { type: 'message', conversation_id: direct.id, event_seq: 1, message } },
      { type: 'conversation.check', conversationId: direct.id },
    ])
  })

  test('a retry with the same message_id returns the stored message with created false', async () => {
    await using t = await testApp()
    const { alice, direct } = await setup(t)
    const input = { message_id: 'k', conversation_id: direct.id, content: 'hi' }
    const first = await messages.post(t.deps, alice, input)
    const retry = await messages.post(t.deps, alice, { ...input, sender_id: alice.id })
    expect(retry).toEqual({ created: false, message: first.message })
    expect(await messageCount(t)).toBe(1)
    expect((await conversations.get(t.deps.store, alice, direct.id)).lastSeq).toBe(1)
  })

  test('the same message_id from another sender is its own message', async () => {
    await using t = await testApp()
    const { alice, bob, direct } = await setup(t)
    const input = { message_id: 'k', conversation_id: direct.id, content: 'hi' }
    const fromAlice = await messages.post(t.deps, alice, input)
    const fromBob = await messages.post(t.deps, bob, input)
    expect(fromBob.created).toBe(true)
    expect(fromBob.message).toMatchObject({ sender_id: bob.id, seq: 2 })
    expect(fromBob.message.id).not.toBe(fromAlice.message.id)
  })

  test('reusing a message_id for other content or another conversation is 409, and a refusal uses up no seq', async () => {
    await using t = await testApp()
    const { alice, bob, direct } = await setup(t)
    const group = (await conversations.create(t.deps, alice, { title: 'G', member_ids: [bob.id], is_group: true })).conversation
    await messages.post(t.deps, alice, { message_id: 'k', conversation_id: direct.id, content: 'hi' })
    expect(brief(await rejected(messages.post(t.deps, alice, { message_id: 'k', conversation_id: direct.id, content: 'hi!' })))).toEqual({
      status: 409,
      code: 'conflict',
      fields: undefined,
    })
    expect(brief(await rejected(messages.post(t.deps, alice, { message_id: 'k', conversation_id: group.id, content: 'hi' })))).toEqual({
      status: 409,
      code: 'conflict',
      fields: undefined,
    })
    expect((await messages.post(t.deps, alice, { message_id: 'k2', conversation_id: direct.id, content: 'next' })).message.seq).toBe(2)
    expect((await messages.post(t.deps, alice, { message_id: 'k3', conversation_id: group.id, content: 'first' })).message.seq).toBe(1)
  })

  test("sender_id naming someone else is 403, even someone in the conversation", async () => {
    await using t = await testApp()
    const { alice, bob, direct } = await setup(t)
    const error = await rejected(messages.post(t.deps, alice, { message_id: 'k', conversation_id: direct.id, content: 'hi', sender_id: bob.id }))
    expect(brief(error)).toEqual({ status: 403, code: 'forbidden', fields: undefined })
    expect(await messageCount(t)).toBe(0)
  })

  test('a non-member is 403, an unknown conversation 404, and neither stores anything', async () => {
    await using t = await testApp()
    const { carol, direct } = await setup(t)
    expect(brief(await rejected(messages.post(t.deps, carol, { message_id: 'k', conversation_id: direct.id, content: 'hi' })))).toEqual({
      status: 403,
      code: 'forbidden',
      fields: undefined,
    })
    expect(brief(await rejected(messages.post(t.deps, carol, { message_id: 'k', conversation_id: 'nope', content: 'hi' })))).toEqual({
      status: 404,
      code: 'not_found',
      fields: undefined,
    })
    expect(await messageCount(t)).toBe(0)
  })

  test.each([
    ['empty content', { content: '' }, 'content'],
    ['whitespace-only content', { content: '\n \t\u00A0\u3000' }, 'content'],
    ['4001 characters', { content: 'x'.repeat(4001) }, 'content'],
    ['4001 emoji', { content: '😀'.repeat(4001) }, 'content'],
    ['content not a string', { content: 42 }, 'content'],
    ['an empty message_id', { message_id: '' }, 'message_id'],
    ['a 129-character message_id', { message_id: 'm'.repeat(129) }, 'message_id'],
    ['a message_id with a space', { message_id: 'a b' }, 'message_id'],
    ['an empty conversation_id', { conversation_id: '' }, 'conversation_id'],
  ])('%s is 422 on the field', async (_, change, field) => {
    await using t = await testApp()
    const { alice, direct } = await setup(t)
    const error = await rejected(messages.post(t.deps, alice, { message_id: 'k', conversation_id: direct.id, content: 'fine', ...change }))
    expect(brief(error)).toEqual({ status: 422, code: 'validation_failed', fields: [field] })
    expect(await messageCount(t)).toBe(0)
  })

  test('4000 characters count code points: 4000 emoji and 4000 ASCII are both accepted', async () => {
    await using t = await testApp()
    const { alice, direct } = await setup(t)
    const emoji = await messages.post(t.deps, alice, { message_id: 'e', conversation_id: direct.id, content: '😀'.repeat(4000) })
    const ascii = await messages.post(t.deps, alice, { message_id: 'a', conversation_id: direct.id, content: 'a'.repeat(4000) })
    expect([emoji.message.content.length, ascii.message.content.length]).toEqual([8000, 4000])
  })

  test('content is stored exactly as given', async () => {
    await using t = await testApp()
    const { alice, bob, direct } = await setup(t)
    const content = '\u202Eevil\u202C e\u0301 \u0007 😀 \n\r\n  '
    await messages.post(t.deps, alice, { message_id: 'k', conversation_id: direct.id, content })
    expect((await messages.history(t.deps.store, bob, direct.id, {})).messages.map((m) => m.content)).toEqual([content])
  })
})

describe('messages.history', () => {
  async function seeded(t: TestApp, count: number) {
    const s = await setup(t)
    for (let i = 1; i <= count; i++) await messages.post(t.deps, i % 2 ? s.alice : s.bob, { message_id: `m${i}`, conversation_id: s.direct.id, content: `message ${i}` })
    return s
  }
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
  const page = async (t: TestApp, actor: User, id: string, query: unknown) => {
    const { messages: list, has_more } = await messages.history(t.deps.store, actor, id, query)
    return { seqs: list.map((m) => m.seq), has_more }
  }

  test('without a query: the newest 50, oldest first', async () => {
    await using t = await testApp()
    const { alice, direct } = await seeded(t, 60)
    expect(await page(t, alice, direct.id, {})).toEqual({ seqs: range(11, 60), has_more: true })
  })

  test('limit, before and after page as documented', async () => {
    await using t = await testApp()
    const { alice, direct } = await seeded(t, 60)
    expect(await page(t, alice, direct.id, { limit: 5 })).toEqual({ seqs: range(56, 60), has_more: true })
    expect(await page(t, alice, direct.id, { limit: 5, before: 6 })).toEqual({ seqs: range(1, 5), has_more: false })
    expect(await page(t, alice, direct.id, { limit: 5, before: 7 })).toEqual({ seqs: range(2, 6), has_more: true })
    expect(await page(t, alice, direct.id, { limit: 5, after: 0 })).toEqual({ seqs: range(1, 5), has_more: true })
    expect(await page(t, alice, direct.id, { limit: 5, after: 55 })).toEqual({ seqs: range(56, 60), has_more: false })
    expect(await page(t, alice, direct.id, { limit: 5, after: 54 })).toEqual({ seqs: range(55, 59), has_more: true })
    expect(await page(t, alice, direct.id, { after: 20, before: 31 })).toEqual({ seqs: range(21, 30), has_more: false })
    expect(await page(t, alice, direct.id, { limit: 3, after: 20, before: 31 })).toEqual({ seqs: range(21, 23), has_more: true })
  })

  test('the messages are whole and in seq order', async () => {
    await using t = await testApp()
    const { alice, bob, direct } = await seeded(t, 2)
    const { messages: list } = await messages.history(t.deps.store, bob, direct.id, {})
    expect(list).toEqual([
      { id: expect.any(String), message_id: 'm1', sender_id: alice.id, conversation_id: direct.id, content: 'message 1', created_at: expect.stringMatching(ISO), seq: 1, edited_at: null, deleted_at: null, reply_to: null, reactions: [] },
      { id: expect.any(String), message_id: 'm2', sender_id: bob.id, conversation_id: direct.id, content: 'message 2', created_at: expect.stringMatching(ISO), seq: 2, edited_at: null, deleted_at: null, reply_to: null, reactions: [] },
    ])
  })

  test.each([
    ['limit 0', { limit: 0 }, 'limit'],
    ['limit 201', { limit: 201 }, 'limit'],
    ['limit 1.5', { limit: 1.5 }, 'limit'],
    ['limit as text', { limit: 'abc' }, 'limit'],
    ['before 0', { before: 0 }, 'before'],
    ['after -1', { after: -1 }, 'after'],
  ])('%s is 422 on the field', async (_, query, field) => {
    await using t = await testApp()
    const { alice, direct } = await seeded(t, 1)
    expect(brief(await thrown(async () => await messages.history(t.deps.store, alice, direct.id, query)))).toEqual({ status: 422, code: 'validation_failed', fields: [field] })
  })

  test('a non-member is 403 and an unknown conversation 404', async () => {
    await using t = await testApp()
    const { alice, carol, direct } = await seeded(t, 1)
    expect(brief(await thrown(async () => await messages.history(t.deps.store, carol, direct.id, {})))).toEqual({ status: 403, code: 'forbidden', fields: undefined })
    expect(brief(await thrown(async () => await messages.history(t.deps.store, alice, 'nope', {})))).toEqual({ status: 404, code: 'not_found', fields: undefined })
  })
})
