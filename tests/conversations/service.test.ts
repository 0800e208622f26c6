import { describe, expect, test } from 'bun:test'
import * as conversations from '../../src/conversations/service'
import * as messages from '../../src/messages/service'
import type { User } from '../../src/users/model'
import { testApp, type TestApp } from '../support/app'
import { events, thrown, user } from '../support/services'

const count = (t: TestApp, table: 'conversations' | 'conversation_members') => (t.deps.sqlite.query(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n

describe('conversations.create', () => {
  test('a group: created, the actor first then the members as given, User objects for members', async () => {
    await using t = testApp()
    const alice = user(t, 'Alice Smith')
    const bob = user(t)
    const carol = user(t, 'Carol King')
    const before = Date.now()
    const { conversation, created } = conversations.create(t.deps, alice, { title: 'Team', member_ids: [carol.id, bob.id] })
    expect(created).toBe(true)
    expect(conversation).toEqual({
      id: expect.any(String),
      title: 'Team',
      isGroup: true,
      createdAt: expect.any(Number),
      lastSeq: 0,
      lastMessageAt: null,
      members: [alice, carol, bob],
    })
    expect(conversation.createdAt).toBeGreaterThanOrEqual(before)
    expect(conversation.createdAt).toBeLessThanOrEqual(Date.now())
  })

  test('de-duplicates member ids and drops the actor from them', async () => {
    await using t = testApp()
    const [alice, bob, carol] = [user(t), user(t), user(t)]
    const { conversation } = conversations.create(t.deps, alice, { title: 'Team', member_ids: [alice.id, bob.id, bob.id, carol.id, alice.id] })
    expect(conversation.members).toEqual([alice, bob, carol])
    expect(count(t, 'conversation_members')).toBe(3)
  })

  test('a 1-on-1 is created once and returned with created false from either side', async () => {
    await using t = testApp()
    const alice = user(t)
    const bob = user(t)
    const first = conversations.create(t.deps, alice, { member_ids: [bob.id] })
    const again = conversations.create(t.deps, alice, { member_ids: [bob.id] })
    const fromBob = conversations.create(t.deps, bob, { member_ids: [alice.id], title: null })
    expect(first).toEqual({
      created: true,
      conversation: { id: expect.any(String), title: null, isGroup: false, createdAt: expect.any(Number), lastSeq: 0, lastMessageAt: null, members: [alice, bob] },
    })
    expect(again).toEqual({ created: false, conversation: first.conversation })
    expect(fromBob).toEqual({ created: false, conversation: first.conversation })
    expect(count(t, 'conversations')).toBe(1)
  })

  test('a reused 1-on-1 comes back with its current last_seq', async () => {
    await using t = testApp()
    const alice = user(t)
    const bob = user(t)
    const first = conversations.create(t.deps, alice, { member_ids: [bob.id] })
    await messages.post(t.deps, bob, { message_id: 'm1', conversation_id: first.conversation.id, content: 'hi' })
    const again = conversations.create(t.deps, bob, { member_ids: [alice.id] })
    expect(again.created).toBe(false)
    expect(again.conversation).toEqual({ ...first.conversation, lastSeq: 1, lastMessageAt: expect.any(Number) })
  })

  test('a title with exactly one other member still opens their 1-on-1, and the title is ignored', async () => {
    await using t = testApp()
    const alice = user(t)
    const bob = user(t)
    const first = conversations.create(t.deps, alice, { title: 'Chat with Bob', member_ids: [bob.id] })
    const again = conversations.create(t.deps, bob, { title: 'Chat with Alice', member_ids: [alice.id] })
    const untitled = conversations.create(t.deps, alice, { member_ids: [bob.id] })
    expect(first.created).toBe(true)
    expect(first.conversation).toMatchObject({ title: null, isGroup: false, members: [alice, bob] })
    expect([again.created, untitled.created]).toEqual([false, false])
    expect(again.conversation.id).toBe(first.conversation.id)
    expect(untitled.conversation.id).toBe(first.conversation.id)
  })

  test('is_group: true makes a group of two, beside their 1-on-1', async () => {
    await using t = testApp()
    const alice = user(t)
    const bob = user(t)
    const direct = conversations.create(t.deps, alice, { member_ids: [bob.id] })
    const group = conversations.create(t.deps, alice, { title: 'Us', member_ids: [bob.id], is_group: true })
    expect(group.created).toBe(true)
    expect(group.conversation).toMatchObject({ title: 'Us', isGroup: true, members: [alice, bob] })
    expect(group.conversation.id).not.toBe(direct.conversation.id)
  })

  test('is_group: false is refused unless there is exactly one other member, and a group without a title is refused', async () => {
    await using t = testApp()
    const alice = user(t)
    const bob = user(t)
    const carol = user(t)
    expect(thrown(() => conversations.create(t.deps, alice, { title: 'T', member_ids: [bob.id, carol.id], is_group: false }))).toMatchObject({
      status: 422,
      details: [{ field: 'is_group' }],
    })
    expect(thrown(() => conversations.create(t.deps, alice, { member_ids: [bob.id], is_group: true }))).toMatchObject({
      status: 422,
      message: 'title is required for a group',
      details: [{ field: 'title' }],
    })
    expect(conversations.create(t.deps, alice, { member_ids: [bob.id], is_group: false }).conversation.isGroup).toBe(false)
  })

  test('announces a new conversation once, and nothing when a 1-on-1 is reused', async () => {
    await using t = testApp()
    const seen = events(t)
    const alice = user(t)
    const bob = user(t)
    const { conversation } = conversations.create(t.deps, alice, { member_ids: [bob.id] })
    conversations.create(t.deps, bob, { member_ids: [alice.id] })
    conversations.create(t.deps, alice, { member_ids: [bob.id] })
    expect(seen).toEqual([{ type: 'conversation.created', conversation }])
  })

  test('an unknown member is 422 on member_ids naming every unknown id, and stores nothing', async () => {
    await using t = testApp()
    const seen = events(t)
    const alice = user(t)
    const bob = user(t)
    const error = thrown(() => conversations.create(t.deps, alice, { title: 'Team', member_ids: [bob.id, 'ghost-1', 'ghost-2'] }))
    expect({ status: error.status, code: error.code, details: error.details }).toEqual({
      status: 422,
      code: 'validation_failed',
      details: [{ field: 'member_ids', message: expect.stringMatching(/ghost-1.*ghost-2/) }],
    })
    expect(error.message).toMatch(/ghost-1.*ghost-2/)
    expect(error.message).not.toContain(bob.id)
    expect(count(t, 'conversations')).toBe(0)
    expect(seen).toEqual([])
  })

  test.each([
    ['no title and no one else', (me: User, _others: User[]) => ({ member_ids: [me.id] })],
    ['no title and two others', (_me: User, others: User[]) => ({ member_ids: others.map((o) => o.id) })],
    ['a blank title', (_me: User, others: User[]) => ({ title: ' \t ', member_ids: others.map((o) => o.id) })],
    ['a title over 100 characters', (_me: User, others: User[]) => ({ title: 't'.repeat(101), member_ids: others.map((o) => o.id) })],
  ])('%s is 422 on title', async (_, input) => {
    await using t = testApp()
    const alice = user(t)
    const others = [user(t), user(t)]
    const error = thrown(() => conversations.create(t.deps, alice, input(alice, others)))
    expect(error).toMatchObject({ status: 422, code: 'validation_failed', details: [{ field: 'title', message: expect.any(String) }] })
    expect(count(t, 'conversations')).toBe(0)
  })

  test.each([
    ['member_ids missing', { title: 'x' }],
    ['member_ids a string', { title: 'x', member_ids: 'abc' }],
    ['the input not an object', 'hello'],
  ])('%s is 422', async (_, input) => {
    await using t = testApp()
    const error = thrown(() => conversations.create(t.deps, user(t), input))
    expect(error).toMatchObject({ status: 422, code: 'validation_failed' })
  })
})

describe('conversations.listFor', () => {
  test("only the actor's conversations, most recently active first", async () => {
    await using t = testApp()
    const alice = user(t)
    const bob = user(t)
    const carol = user(t)
    const a = conversations.create(t.deps, alice, { member_ids: [bob.id] }).conversation
    const b = conversations.create(t.deps, alice, { title: 'B', member_ids: [carol.id], is_group: true }).conversation
    const c = conversations.create(t.deps, bob, { member_ids: [carol.id] }).conversation
    // Fixed timestamps: a created first, b after it, then a message in a after both.
    t.deps.sqlite.run('UPDATE conversations SET created_at = ? WHERE id = ?', [1_000, a.id])
    t.deps.sqlite.run('UPDATE conversations SET created_at = ? WHERE id = ?', [2_000, b.id])
    expect(conversations.listFor(t.deps.db, alice).map((r) => r.id)).toEqual([b.id, a.id])
    await messages.post(t.deps, bob, { message_id: 'x', conversation_id: a.id, content: 'news' })
    const list = conversations.listFor(t.deps.db, alice)
    expect(list.map((r) => r.id)).toEqual([a.id, b.id])
    expect(list[0]).toEqual({ ...a, createdAt: 1_000, lastSeq: 1, lastMessageAt: expect.any(Number) })
    expect(conversations.listFor(t.deps.db, carol).map((r) => r.id).sort()).toEqual([b.id, c.id].sort())
  })

  test('a conversation whose message is older than another conversation is newer stays below it', async () => {
    await using t = testApp()
    const alice = user(t)
    const bob = user(t)
    const a = conversations.create(t.deps, alice, { title: 'A', member_ids: [bob.id], is_group: true }).conversation
    const b = conversations.create(t.deps, alice, { title: 'B', member_ids: [bob.id], is_group: true }).conversation
    await messages.post(t.deps, alice, { message_id: 'x', conversation_id: a.id, content: 'old news' })
    t.deps.sqlite.run('UPDATE conversations SET created_at = 1000, last_message_at = 2000 WHERE id = ?', [a.id])
    t.deps.sqlite.run('UPDATE conversations SET created_at = 3000 WHERE id = ?', [b.id])
    expect(conversations.listFor(t.deps.db, alice).map((r) => r.id)).toEqual([b.id, a.id])
  })
})

describe('conversations.requireMembership, get and idsFor', () => {
  test('a member gets the row and the record; idsFor lists their conversations', async () => {
    await using t = testApp()
    const alice = user(t)
    const bob = user(t)
    const carol = user(t)
    const ab = conversations.create(t.deps, alice, { member_ids: [bob.id] }).conversation
    const group = conversations.create(t.deps, bob, { title: 'G', member_ids: [carol.id], is_group: true }).conversation
    expect(conversations.requireMembership(t.deps.db, bob, ab.id)).toMatchObject({ id: ab.id, isGroup: false, createdBy: alice.id })
    expect(conversations.get(t.deps.db, bob, ab.id)).toEqual(ab)
    expect(conversations.idsFor(t.deps.db, bob.id).sort()).toEqual([ab.id, group.id].sort())
    expect(conversations.idsFor(t.deps.db, alice.id)).toEqual([ab.id])
  })

  test('a non-member is 403 and an unknown conversation is 404', async () => {
    await using t = testApp()
    const alice = user(t)
    const bob = user(t)
    const outsider = user(t)
    const ab = conversations.create(t.deps, alice, { member_ids: [bob.id] }).conversation
    expect(thrown(() => conversations.get(t.deps.db, outsider, ab.id))).toMatchObject({ status: 403, code: 'forbidden' })
    expect(thrown(() => conversations.get(t.deps.db, alice, 'no-such-conversation'))).toMatchObject({ status: 404, code: 'not_found' })
  })
})
