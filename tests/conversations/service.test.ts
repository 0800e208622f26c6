import { describe, expect, setSystemTime, test } from 'bun:test'
import * as conversations from '../../src/conversations/service'
import * as messages from '../../src/messages/service'
import type { User } from '../../src/users/model'
import { testApp, type TestApp } from '../support/app'
import { events, thrown, user } from '../support/services'

const count = async (t: TestApp, table: 'conversations' | 'conversation_members') => (await t.sql<{ n: number }>(`SELECT count(*) AS n FROM ${table}`))[0]!.n

describe('conversations.create', () => {
  test('a group: created, the actor first then the members as given, User objects for members', async () => {
    await using t = await testApp()
    const alice = await user(t, 'Alice Smith')
    const bob = await user(t)
    const carol = await user(t, 'Carol King')
    const before = Date.now()
    const { conversation, created } = await conversations.create(t.deps, alice, { title: 'Team', member_ids: [carol.id, bob.id] })
    expect(created).toBe(true)
    expect(conversation).toEqual({
      id: expect.any(String),
      title: 'Team',
      isGroup: true,
      createdAt: expect.any(Number),
      lastSeq: 0,
      lastEventSeq: 0,
      lastMessageAt: null,
      members: [alice, carol, bob],
    })
    expect(conversation.createdAt).toBeGreaterThanOrEqual(before)
    expect(conversation.createdAt).toBeLessThanOrEqual(Date.now())
  })

  test('de-duplicates member ids and drops the actor from them', async () => {
    await using t = await testApp()
    const [alice, bob, carol] = [await user(t), await user(t), await user(t)]
    const { conversation } = await conversations.create(t.deps, alice, { title: 'Team', member_ids: [alice.id, bob.id, bob.id, carol.id, alice.id] })
    expect(conversation.members).toEqual([alice, bob, carol])
    expect(await count(t, 'conversation_members')).toBe(3)
  })

  test('a 1-on-1 is created once and returned with created false from either side', async () => {
    await using t = await testApp()
    const alice = await user(t)
    const bob = await user(t)
    const first = await conversations.create(t.deps, alice, { member_ids: [bob.id] })
    const again = await conversations.create(t.deps, alice, { member_ids: [bob.id] })
    const fromBob = await conversations.create(t.deps, bob, { member_ids: [alice.id], title: null })
    expect(first).toEqual({
      created: true,
      conversation: { id: expect.any(String), title: null, isGroup: false, createdAt: expect.any(Number), lastSeq: 0, lastEventSeq: 0, lastMessageAt: null, members: [alice, bob] },
    })
    expect(again).toEqual({ created: false, conversation: first.conversation })
    expect(fromBob).toEqual({ created: false, conversation: first.conversation })
    expect(await count(t, 'conversations')).toBe(1)
  })

  test('a reused 1-on-1 comes back with its current last_seq', async () => {
    await using t = await testApp()
    const alice = await user(t)
    const bob = await user(t)
    const first = await conversations.create(t.deps, alice, { member_ids: [bob.id] })
    await messages.post(t.deps, bob, { message_id: 'm1', conversation_id: first.conversation.id, content: 'hi' })
    const again = await conversations.create(t.deps, bob, { member_ids: [alice.id] })
    expect(again.created).toBe(false)
    expect(again.conversation).toEqual({ ...first.conversation, lastSeq: 1, lastEventSeq: 1, lastMessageAt: expect.any(Number) })
  })

  test('a title with exactly one other member still opens their 1-on-1, and the title is ignored', async () => {
    await using t = await testApp()
    const alice = await user(t)
    const bob = await user(t)
    const first = await conversations.create(t.deps, alice, { title: 'Chat with Bob', member_ids: [bob.id] })
    const again = await conversations.create(t.deps, bob, { title: 'Chat with Alice', member_ids: [alice.id] })
    const untitled = await conversations.create(t.deps, alice, { member_ids: [bob.id] })
    expect(first.created).toBe(true)
    expect(first.conversation).toMatchObject({ title: null, isGroup: false, members: [alice, bob] })
    expect([again.created, untitled.created]).toEqual([false, false])
    expect(again.conversation.id).toBe(first.conversation.id)
    expect(untitled.conversation.id).toBe(first.conversation.id)
  })

  test('is_group: true makes a group of two, beside their 1-on-1', async () => {
    await using t = await testApp()
    const alice = await user(t)
    const bob = await user(t)
    const direct = await conversations.create(t.deps, alice, { member_ids: [bob.id] })
    const group = await conversations.create(t.deps, alice, { title: 'Us', member_ids: [bob.id], is_group: true })
    expect(group.created).toBe(true)
    expect(group.conversation).toMatchObject({ title: 'Us', isGroup: true, members: [alice, bob] })
    expect(group.conversation.id).not.toBe(direct.conversation.id)
  })

  test('is_group: false is refused unless there is exactly one other member, and a group without a title is refused', async () => {
    await using t = await testApp()
    const alice = await user(t)
    const bob = await user(t)
    const carol = await user(t)
    expect(await thrown(async () => await conversations.create(t.deps, alice, { title: 'T', member_ids: [bob.id, carol.id], is_group: false }))).toMatchObject({
      status: 422,
      details: [{ field: 'is_group' }],
    })
    expect(await thrown(async () => await conversations.create(t.deps, alice, { member_ids: [bob.id], is_group: true }))).toMatchObject({
      status: 422,
      message: 'title is required for a group',
      details: [{ field: 'title' }],
    })
    expect((await conversations.create(t.deps, alice, { member_ids: [bob.id], is_group: false })).conversation.isGroup).toBe(false)
  })

  test('announces a new conversation once, and nothing when a 1-on-1 is reused', async () => {
    await using t = await testApp()
    const seen = events(t)
    const alice = await user(t)
    const bob = await user(t)
    const { conversation } = await conversations.create(t.deps, alice, { member_ids: [bob.id] })
    await conversations.create(t.deps, bob, { member_ids: [alice.id] })
    await conversations.create(t.deps, alice, { member_ids: [bob.id] })
    expect(seen).toEqual([{ type: 'conversation.created', conversation }])
  })

  test('an unknown member is 422 on member_ids naming every unknown id, and stores nothing', async () => {
    await using t = await testApp()
    const seen = events(t)
    const alice = await user(t)
    const bob = await user(t)
    const error = await thrown(async () => await conversations.create(t.deps, alice, { title: 'Team', member_ids: [bob.id, 'ghost-1', 'ghost-2'] }))
    expect({ status: error.status, code: error.code, details: error.details }).toEqual({
      status: 422,
      code: 'validation_failed',
      details: [{ field: 'member_ids', message: expect.stringMatching(/ghost-1.*ghost-2/) }],
    })
    expect(error.message).toMatch(/ghost-1.*ghost-2/)
    expect(error.message).not.toContain(bob.id)
    expect(await count(t, 'conversations')).toBe(0)
    expect(seen).toEqual([])
  })

  test.each([
    ['no title and no one else', (me: User, _others: User[]) => ({ member_ids: [me.id] })],
    ['no title and two others', (_me: User, others: User[]) => ({ member_ids: others.map((o) => o.id) })],
    ['a blank title', (_me: User, others: User[]) => ({ title: ' \t ', member_ids: others.map((o) => o.id) })],
    ['a title over 100 characters', (_me: User, others: User[]) => ({ title: 't'.repeat(101), member_ids: others.map((o) => o.id) })],
  ])('%s is 422 on title', async (_, input) => {
    await using t = await testApp()
    const alice = await user(t)
    const others = [await user(t), await user(t)]
    const error = await thrown(async () => await conversations.create(t.deps, alice, input(alice, others)))
    expect(error).toMatchObject({ status: 422, code: 'validation_failed', details: [{ field: 'title', message: expect.any(String) }] })
    expect(await count(t, 'conversations')).toBe(0)
  })

  test.each([
    ['member_ids missing', { title: 'x' }],
    ['member_ids a string', { title: 'x', member_ids: 'abc' }],
    ['the input not an object', 'hello'],
  ])('%s is 422', async (_, input) => {
    await using t = await testApp()
    const error = await thrown(async () => await conversations.create(t.deps, await user(t), input))
    expect(error).toMatchObject({ status: 422, code: 'validation_failed' })
  })
})

/** Runs `fn` with the clock at `at` (epoch ms), so that creation and message times are chosen, not raced. */
async function at<T>(when: number, fn: () => T | Promise<T>): Promise<T> {
  setSystemTime(when)
  try {
    return await fn()
  } finally {
    setSystemTime()
  }
}

/** Every page of `actor`'s list, following next_cursor; the ids of each page. */
async function allPages(t: TestApp, actor: User, limit: number): Promise<string[][]> {
  const pages: string[][] = []
  let cursor: string | undefined
  for (let i = 0; i < 100; i++) {
    const page = await conversations.pageFor(t.deps.store, actor, { limit, ...(cursor ? { cursor } : {}) })
    pages.push(page.conversations.map((c) => c.id))
    if (page.nextCursor === null) return pages
    cursor = page.nextCursor
  }
  throw new Error('more than 100 pages')
}

const ids = (page: { conversations: { id: string }[] }) => page.conversations.map((c) => c.id)

describe('conversations.pageFor', () => {
  test("only the actor's conversations, most recently active first: a new message moves one to the front", async () => {
    await using t = await testApp()
    const [alice, bob, carol] = [await user(t), await user(t), await user(t)]
    const a = await at(1_000, async () => (await conversations.create(t.deps, alice, { member_ids: [bob.id] })).conversation)
    const b = await at(2_000, async () => (await conversations.create(t.deps, alice, { title: 'B', member_ids: [carol.id], is_group: true })).conversation)
    const c = await at(3_000, async () => (await conversations.create(t.deps, bob, { member_ids: [carol.id] })).conversation)
    const nothingUnread = { lastReadSeq: 0, unreadCount: 0 }
    expect(await conversations.pageFor(t.deps.store, alice)).toEqual({ conversations: [b, a].map((c) => ({ ...c, read: nothingUnread })), nextCursor: null })

    await at(4_000, () => messages.post(t.deps, bob, { message_id: 'x', conversation_id: a.id, content: 'news' }))
    const page = await conversations.pageFor(t.deps.store, alice)
    expect(ids(page)).toEqual([a.id, b.id])
    expect(page.conversations[0]).toEqual({ ...a, lastSeq: 1, lastEventSeq: 1, lastMessageAt: 4_000, read: { lastReadSeq: 0, unreadCount: 1 } })
    expect(ids(await conversations.pageFor(t.deps.store, carol))).toEqual([c.id, b.id])
  })

  test('a conversation whose message is older than another conversation is newer stays below it', async () => {
    await using t = await testApp()
    const [alice, bob] = [await user(t), await user(t)]
    const a = await at(1_000, async () => (await conversations.create(t.deps, alice, { title: 'A', member_ids: [bob.id], is_group: true })).conversation)
    await at(2_000, () => messages.post(t.deps, alice, { message_id: 'x', conversation_id: a.id, content: 'old news' }))
    const b = await at(3_000, async () => (await conversations.create(t.deps, alice, { title: 'B', member_ids: [bob.id], is_group: true })).conversation)
    expect(ids(await conversations.pageFor(t.deps.store, alice))).toEqual([b.id, a.id])
  })

  test('someone in no conversation gets an empty last page', async () => {
    await using t = await testApp()
    expect(await conversations.pageFor(t.deps.store, await user(t))).toEqual({ conversations: [], nextCursor: null })
  })

  test('pages of `limit` follow each other through next_cursor, in order, each conversation once, the last with a null cursor', async () => {
    await using t = await testApp()
    const [alice, bob] = [await user(t), await user(t)]
    const created: string[] = []
    for (let i = 0; i < 7; i++) created.push(await at(1_000 * i, async () => (await conversations.create(t.deps, alice, { title: `g${i}`, member_ids: [bob.id], is_group: true })).conversation.id))
    const newestFirst = created.toReversed()
    expect(await allPages(t, alice, 3)).toEqual([newestFirst.slice(0, 3), newestFirst.slice(3, 6), newestFirst.slice(6)])
    expect(await allPages(t, alice, 7)).toEqual([newestFirst])
    expect(await allPages(t, alice, 200)).toEqual([newestFirst])
    // As a query string gives it, too.
    expect(await conversations.pageFor(t.deps.store, alice, { limit: '3' })).toEqual(await conversations.pageFor(t.deps.store, alice, { limit: 3 }))
    // A page that ends exactly at the end still says there is no more.
    expect((await conversations.pageFor(t.deps.store, alice, { limit: 7 })).nextCursor).toBeNull()
  })

  test('without a limit a page holds 50', async () => {
    await using t = await testApp()
    const [alice, bob] = [await user(t), await user(t)]
    for (let i = 0; i < 51; i++) await conversations.create(t.deps, alice, { title: `g${i}`, member_ids: [bob.id], is_group: true })
    const first = await conversations.pageFor(t.deps.store, alice)
    expect(first.conversations.length).toBe(50)
    expect((await conversations.pageFor(t.deps.store, alice, { cursor: first.nextCursor! })).conversations.length).toBe(1)
  })

  test('activity counts to the second: conversations active in the same second go larger id first, and a cursor between them loses none', async () => {
    await using t = await testApp()
    const [alice, bob] = [await user(t), await user(t)]
    const tied: string[] = []
    for (let i = 0; i < 5; i++) tied.push(await at(5_000 + i * 100, async () => (await conversations.create(t.deps, alice, { title: `g${i}`, member_ids: [bob.id], is_group: true })).conversation.id))
    // A message later in the same second moves nothing: the first conversation stays where its id puts it.
    await at(5_900, () => messages.post(t.deps, bob, { message_id: 'late', conversation_id: tied[0]!, content: 'same second' }))
    const byIdDescending = tied.toSorted().toReversed()
    expect(await allPages(t, alice, 1)).toEqual(byIdDescending.map((id) => [id]))
    expect(await allPages(t, alice, 2)).toEqual([byIdDescending.slice(0, 2), byIdDescending.slice(2, 4), byIdDescending.slice(4)])
  })

  test('a conversation that becomes active while the list is paged moves to the front: later pages neither repeat nor show it', async () => {
    await using t = await testApp()
    const [alice, bob] = [await user(t), await user(t)]
    const created: string[] = []
    for (let i = 0; i < 6; i++) created.push(await at(1_000 * i, async () => (await conversations.create(t.deps, alice, { title: `g${i}`, member_ids: [bob.id], is_group: true })).conversation.id))
    const [g0, g1, g2, g3, g4, g5] = created as [string, string, string, string, string, string]
    const first = await conversations.pageFor(t.deps.store, alice, { limit: 2 })
    expect(ids(first)).toEqual([g5, g4])
    // One already seen and one not yet seen both get a message.
    await at(10_000, () => messages.post(t.deps, bob, { message_id: 'a', conversation_id: g4, content: 'seen' }))
    await at(11_000, () => messages.post(t.deps, bob, { message_id: 'b', conversation_id: g1, content: 'not yet seen' }))
    const second = await conversations.pageFor(t.deps.store, alice, { limit: 2, cursor: first.nextCursor! })
    const third = await conversations.pageFor(t.deps.store, alice, { limit: 2, cursor: second.nextCursor! })
    expect([ids(second), ids(third), third.nextCursor]).toEqual([[g3, g2], [g0], null])
    // Starting again shows the current order.
    expect(await allPages(t, alice, 50)).toEqual([[g1, g4, g5, g3, g2, g0]])
  })

  test('every item keeps all its members; a page stops before its members pass 5,000, and always holds one', async () => {
    await using t = await testApp()
    const alice = await user(t)
    const others = (await Promise.all(Array.from({ length: 500 }, () => user(t)))).map((u) => u.id)
    const big: string[] = []
    for (let i = 0; i < 11; i++) big.push(await at(1_000 * i, async () => (await conversations.create(t.deps, alice, { title: `big ${i}`, member_ids: others })).conversation.id))
    const small = await at(20_000, async () => (await conversations.create(t.deps, alice, { member_ids: [others[0]!] })).conversation.id)

    // 501 members each: the 1-on-1 (2) and nine groups (4,509) fit in 5,000; a tenth group would not.
    const first = await conversations.pageFor(t.deps.store, alice, { limit: 200 })
    expect(ids(first)).toEqual([small, ...big.toReversed().slice(0, 9)])
    expect(first.conversations.slice(1).every((c) => c.members.length === 501)).toBe(true)
    expect(first.conversations[1]!.members.map((m) => m.id)).toEqual([alice.id, ...others])
    const second = await conversations.pageFor(t.deps.store, alice, { limit: 200, cursor: first.nextCursor! })
    expect([ids(second), second.nextCursor]).toEqual([big.toReversed().slice(9), null])
  })

  test.each([
    ['not base64url', '!!!!'],
    ['base64url of text that is no position', Buffer.from('hello').toString('base64url')],
    ['a position without an id', Buffer.from('1000.').toString('base64url')],
    ['a time past the largest safe integer', Buffer.from('99999999999999999.abc').toString('base64url')],
    ['a position written with leading zeros', Buffer.from('01000.abc').toString('base64url')],
    ['a valid cursor with a character added', Buffer.from('1000.abc').toString('base64url') + 'A'],
    ['empty', ''],
    ['too long', 'A'.repeat(201)],
    ['a number', 42],
  ])('a cursor that is %s is 422 on cursor', async (_, cursor) => {
    await using t = await testApp()
    const error = await thrown(async () => await conversations.pageFor(t.deps.store, await user(t), { cursor }))
    expect(error).toMatchObject({ status: 422, code: 'validation_failed' })
    expect(error.details?.map((d) => d.field)).toEqual(['cursor'])
  })

  test.each([0, 201, 1.5, '1.5', 'ten'])('a limit of %p is 422 on limit', async (limit) => {
    await using t = await testApp()
    const error = await thrown(async () => await conversations.pageFor(t.deps.store, await user(t), { limit }))
    expect(error).toMatchObject({ status: 422, code: 'validation_failed' })
    expect(error.details?.map((d) => d.field)).toEqual(['limit'])
  })
})

describe('conversations.requireMembership, get and positionsFor', () => {
  test('a member gets the row and the record; positionsFor lists their conversations', async () => {
    await using t = await testApp()
    const alice = await user(t)
    const bob = await user(t)
    const carol = await user(t)
    const ab = (await conversations.create(t.deps, alice, { member_ids: [bob.id] })).conversation
    const group = (await conversations.create(t.deps, bob, { title: 'G', member_ids: [carol.id], is_group: true })).conversation
    expect(await conversations.requireMembership(t.deps.store, bob, ab.id)).toMatchObject({ id: ab.id, isGroup: false, createdBy: alice.id })
    expect(await conversations.get(t.deps.store, bob, ab.id)).toEqual(ab)
    expect((await conversations.positionsFor(t.deps.store, bob.id)).map((p) => p.id).sort()).toEqual([ab.id, group.id].sort())
    expect(await conversations.positionsFor(t.deps.store, alice.id)).toEqual([{ id: ab.id, lastEventSeq: 0 }])
  })

  test('a non-member is 403 and an unknown conversation is 404', async () => {
    await using t = await testApp()
    const alice = await user(t)
    const bob = await user(t)
    const outsider = await user(t)
    const ab = (await conversations.create(t.deps, alice, { member_ids: [bob.id] })).conversation
    expect(await thrown(async () => await conversations.get(t.deps.store, outsider, ab.id))).toMatchObject({ status: 403, code: 'forbidden' })
    expect(await thrown(async () => await conversations.get(t.deps.store, alice, 'no-such-conversation'))).toMatchObject({ status: 404, code: 'not_found' })
  })

  test('a membership ended in the database (by another node, or by hand) stops being believed within MEMBERSHIP_MEMORY_MS', async () => {
    await using t = await testApp()
    const alice = await user(t)
    const bob = await user(t)
    const carol = await user(t)
    const group = (await conversations.create(t.deps, alice, { title: 'G', member_ids: [bob.id, carol.id] })).conversation
    // Confirmed once, and so remembered.
    await conversations.requireMember(t.deps.store, bob, group.id)
    await t.sql('DELETE FROM conversation_members WHERE conversation_id = ? AND user_id = ?', group.id, bob.id)
    const removed = performance.now()
    let refusal: unknown
    for (let i = 0; i < 200 && refusal === undefined; i++) {
      refusal = await conversations.requireMember(t.deps.store, bob, group.id).then(
        () => undefined,
        (error: unknown) => error,
      )
      if (refusal === undefined) await Bun.sleep(50) // polling the condition, bounded: 200 × 50 ms
    }
    expect(refusal).toMatchObject({ status: 403, code: 'forbidden' })
    expect(performance.now() - removed).toBeLessThan(conversations.MEMBERSHIP_MEMORY_MS + 2_000)
    // Still believed of the others, who are members.
    await conversations.requireMember(t.deps.store, carol, group.id)
  }, 20_000)
})
