import { describe, expect, setSystemTime, test } from 'bun:test'
import { testApp, type TestApp } from '../support/app'
import { account, call, send, uniqueName, type Account } from '../support/http'

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

const conversationCount = async (t: TestApp) => (await t.sql<{ n: number }>('SELECT count(*) AS n FROM conversations'))[0]!.n

const create = (t: TestApp, who: Account, body: unknown) => call(t.app, 'POST', '/conversations', { token: who.token, body })

async function threeAccounts(t: TestApp) {
  const alice = await account(t.app, uniqueName('alice'), 'Alice Smith')
  const bob = await account(t.app, uniqueName('bob'))
  const carol = await account(t.app, uniqueName('carol'), 'Carol King')
  return { alice, bob, carol }
}

describe('POST /conversations: groups', () => {
  test('a title with members creates a group: 201, the creator first, counts and names filled in, no messages yet', async () => {
    await using t = await testApp()
    const { alice, bob, carol } = await threeAccounts(t)
    const reply = await create(t, alice, { title: 'Team', member_ids: [bob.id, carol.id] })
    expect(reply.status).toBe(201)
    expect(reply.body).toEqual({
      id: expect.any(String),
      title: 'Team',
      members: [alice.id, bob.id, carol.id],
      is_group: true,
      member_count: 3,
      display_name: 'Team',
      created_at: expect.stringMatching(ISO),
      last_message_at: null,
      last_seq: 0,
      last_event_seq: 0,
    })
  })

  test("duplicated ids and the creator's own id in member_ids count once", async () => {
    await using t = await testApp()
    const { alice, bob, carol } = await threeAccounts(t)
    const reply = await create(t, alice, { title: 'Team', member_ids: [bob.id, alice.id, carol.id, bob.id, carol.id, alice.id] })
    expect(reply.status).toBe(201)
    expect(reply.body).toMatchObject({ members: [alice.id, bob.id, carol.id], member_count: 3 })
    const rows = (await t.sql<{ n: number }>('SELECT count(*) AS n FROM conversation_members WHERE conversation_id = ?', reply.body.id))[0]!
    expect(rows.n).toBe(3)
  })

  test('the title is trimmed', async () => {
    await using t = await testApp()
    const { alice, bob, carol } = await threeAccounts(t)
    const reply = await create(t, alice, { title: '  Team  ', member_ids: [bob.id, carol.id] })
    expect(reply.status).toBe(201)
    expect(reply.body).toMatchObject({ title: 'Team', display_name: 'Team' })
  })

  test('is_group: true with exactly one other member makes a group, separate from their 1-on-1', async () => {
    await using t = await testApp()
    const { alice, bob } = await threeAccounts(t)
    const direct = await create(t, alice, { member_ids: [bob.id] })
    const group = await create(t, alice, { title: 'Just us', member_ids: [bob.id], is_group: true })
    expect(direct.status).toBe(201)
    expect(group.status).toBe(201)
    expect(group.body).toMatchObject({ is_group: true, title: 'Just us', display_name: 'Just us', members: [alice.id, bob.id], member_count: 2 })
    expect(group.body.id).not.toBe(direct.body.id)
    expect(await conversationCount(t)).toBe(2)
    // The 1-on-1 is still found as the 1-on-1, not as the group.
    const again = await create(t, bob, { member_ids: [alice.id] })
    expect(again).toMatchObject({ status: 201, body: { id: direct.body.id, is_group: false } })
  })

  test('the same title and members twice make two groups', async () => {
    await using t = await testApp()
    const { alice, bob, carol } = await threeAccounts(t)
    const first = await create(t, alice, { title: 'Team', member_ids: [bob.id, carol.id] })
    const second = await create(t, alice, { title: 'Team', member_ids: [bob.id, carol.id] })
    expect([first.status, second.status]).toEqual([201, 201])
    expect(second.body.id).not.toBe(first.body.id)
    expect(await conversationCount(t)).toBe(2)
  })
})

describe('POST /conversations: 1-on-1', () => {
  test("exactly one other member and no title opens a 1-on-1 named after the other person's full name", async () => {
    await using t = await testApp()
    const { alice, carol } = await threeAccounts(t)
    const reply = await create(t, alice, { member_ids: [carol.id] })
    expect(reply.status).toBe(201)
    expect(reply.body).toEqual({
      id: expect.any(String),
      title: null,
      members: [alice.id, carol.id],
      is_group: false,
      member_count: 2,
      display_name: 'Carol King',
      created_at: expect.stringMatching(ISO),
      last_message_at: null,
      last_seq: 0,
      last_event_seq: 0,
    })
  })

  test('asking again, from either side, answers 201 with the same conversation, named after the other side, marked as a replay', async () => {
    await using t = await testApp()
    const { alice, bob } = await threeAccounts(t)
    const first = await create(t, alice, { member_ids: [bob.id] })
    const again = await create(t, alice, { member_ids: [bob.id] })
    const fromBob = await create(t, bob, { member_ids: [alice.id] })
    const fromBobWithHimself = await create(t, bob, { member_ids: [alice.id, bob.id, alice.id], title: null })

    expect(first.status).toBe(201)
    expect(first.headers.get('idempotent-replayed')).toBeNull()
    expect(first.body.display_name).toBe(bob.username) // Bob gave no full name
    expect(again).toMatchObject({ status: 201, body: first.body })
    expect(fromBob.status).toBe(201)
    expect(fromBob.body).toEqual({ ...first.body, display_name: 'Alice Smith' })
    expect(fromBobWithHimself).toMatchObject({ status: 201, body: fromBob.body })
    for (const replay of [again, fromBob, fromBobWithHimself]) expect(replay.headers.get('idempotent-replayed')).toBe('true')
    expect(await conversationCount(t)).toBe(1)
  })

  test("the guide's request shape, a title and one other member, opens the 1-on-1 from both sides and ignores the title", async () => {
    await using t = await testApp()
    const { alice, bob } = await threeAccounts(t)
    const fromAlice = await create(t, alice, { title: 'Alice and Bob', member_ids: [bob.id] })
    const fromBob = await create(t, bob, { title: 'Bob and Alice', member_ids: [alice.id] })
    expect(fromAlice).toMatchObject({ status: 201, body: { is_group: false, title: null, display_name: bob.username, members: [alice.id, bob.id] } })
    expect(fromBob).toMatchObject({ status: 201, body: { id: fromAlice.body.id, is_group: false, title: null, display_name: 'Alice Smith' } })
    expect(fromAlice.headers.get('idempotent-replayed')).toBeNull()
    expect(fromBob.headers.get('idempotent-replayed')).toBe('true')
    expect(await conversationCount(t)).toBe(1)
  })

  test('the other side opening it first makes no difference', async () => {
    await using t = await testApp()
    const { alice, bob } = await threeAccounts(t)
    const fromBob = await create(t, bob, { member_ids: [alice.id] })
    const fromAlice = await create(t, alice, { member_ids: [bob.id] })
    expect(fromBob.status).toBe(201)
    expect(fromAlice.status).toBe(201)
    expect(fromAlice.headers.get('idempotent-replayed')).toBe('true')
    expect(fromAlice.body).toEqual({ ...fromBob.body, display_name: bob.username })
    expect(fromAlice.body.members).toEqual([bob.id, alice.id])
  })

  test('different pairs get different 1-on-1s', async () => {
    await using t = await testApp()
    const { alice, bob, carol } = await threeAccounts(t)
    const ab = await create(t, alice, { member_ids: [bob.id] })
    const ac = await create(t, alice, { member_ids: [carol.id] })
    const bc = await create(t, bob, { member_ids: [carol.id] })
    expect([ab.status, ac.status, bc.status]).toEqual([201, 201, 201])
    expect(new Set([ab.body.id, ac.body.id, bc.body.id]).size).toBe(3)
  })

  test('ten requests at once from each side, titled or not, make exactly one conversation: one first write, 19 replays, the same id everywhere', async () => {
    await using t = await testApp()
    const { alice, bob } = await threeAccounts(t)
    const requests: Array<ReturnType<typeof create>> = []
    for (let i = 0; i < 10; i++) {
      requests.push(create(t, alice, { member_ids: [bob.id], ...(i % 2 ? { title: `Alice ${i}` } : {}) }))
      requests.push(create(t, bob, { member_ids: [alice.id], ...(i % 2 ? { title: `Bob ${i}` } : {}) }))
    }
    const replies = await Promise.all(requests)

    expect(await conversationCount(t)).toBe(1)
    expect(replies.map((r) => r.status)).toEqual(Array(20).fill(201))
    expect(replies.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(19)
    expect(new Set(replies.map((r) => r.body.id)).size).toBe(1)
    const members = (await t.sql<{ n: number }>('SELECT count(*) AS n FROM conversation_members'))[0]!
    expect(members.n).toBe(2)
  })
})

describe('POST /conversations: refusals', () => {
  test('an unknown member id is 422 naming member_ids and the id', async () => {
    await using t = await testApp()
    const { alice, bob } = await threeAccounts(t)
    const ghost = '0190e8a4-0000-7000-8000-000000000000'
    const reply = await create(t, alice, { title: 'Team', member_ids: [bob.id, ghost] })
    expect(reply.status).toBe(422)
    expect(reply.body).toEqual({
      error: {
        code: 'validation_failed',
        message: expect.stringContaining(ghost),
        details: [{ field: 'member_ids', message: expect.stringContaining(ghost) }],
      },
    })
    expect(await conversationCount(t)).toBe(0)
  })

  test('an unknown id as the only member is 422 too, not a 1-on-1 with nobody', async () => {
    await using t = await testApp()
    const { alice } = await threeAccounts(t)
    const reply = await create(t, alice, { member_ids: ['nobody'] })
    expect(reply.status).toBe(422)
    expect(reply.body.error.details).toEqual([{ field: 'member_ids', message: expect.stringContaining('nobody') }])
    expect(await conversationCount(t)).toBe(0)
  })

  test.each([
    ['no title and no members', (_: Account) => ({ member_ids: [] })],
    ['no title and only the creator', (me: Account) => ({ member_ids: [me.id] })],
  ])('%s is 422 on title', async (_, body) => {
    await using t = await testApp()
    const { alice } = await threeAccounts(t)
    const reply = await create(t, alice, body(alice))
    expect(reply.status).toBe(422)
    expect(reply.body.error).toMatchObject({ code: 'validation_failed', details: [{ field: 'title', message: expect.any(String) }] })
    expect(await conversationCount(t)).toBe(0)
  })

  test('no title and two or more others is 422 on title', async () => {
    await using t = await testApp()
    const { alice, bob, carol } = await threeAccounts(t)
    const reply = await create(t, alice, { member_ids: [bob.id, carol.id] })
    expect(reply.status).toBe(422)
    expect(reply.body.error).toMatchObject({ code: 'validation_failed', details: [{ field: 'title', message: expect.any(String) }] })
    expect(await conversationCount(t)).toBe(0)
  })

  test.each([
    ['a blank title', { title: '   ' }, 'title'],
    ['a title of 101 characters', { title: 'x'.repeat(101) }, 'title'],
    ['a number for a title', { title: 42 }, 'title'],
    ['is_group false with two others', { title: 'T', is_group: false }, 'is_group'],
    ['is_group as a string', { title: 'T', is_group: 'yes' }, 'is_group'],
  ])('%s is 422 on that field', async (_, extra, field) => {
    await using t = await testApp()
    const { alice, bob, carol } = await threeAccounts(t)
    const reply = await create(t, alice, { member_ids: [bob.id, carol.id], ...extra })
    expect(reply.status).toBe(422)
    expect(reply.body.error.code).toBe('validation_failed')
    expect(reply.body.error.details.map((d: { field: string }) => d.field)).toContain(field)
    expect(await conversationCount(t)).toBe(0)
  })

  test('a title of exactly 100 characters is accepted', async () => {
    await using t = await testApp()
    const { alice, bob } = await threeAccounts(t)
    const reply = await create(t, alice, { title: 'x'.repeat(100), member_ids: [bob.id], is_group: true })
    expect(reply).toMatchObject({ status: 201, body: { title: 'x'.repeat(100) } })
  })

  test.each([
    ['a string', 'someone'],
    ['an object', { id: 'someone' }],
    ['null', null],
    ['a list of numbers', [1, 2]],
  ])('member_ids as %s is 422 on member_ids', async (_, memberIds) => {
    await using t = await testApp()
    const { alice } = await threeAccounts(t)
    const reply = await create(t, alice, { title: 'Team', member_ids: memberIds })
    expect(reply.status).toBe(422)
    expect(reply.body.error.code).toBe('validation_failed')
    expect(reply.body.error.details.map((d: { field: string }) => d.field.split('.')[0])).toContain('member_ids')
  })

  test('missing member_ids is 422', async () => {
    await using t = await testApp()
    const { alice } = await threeAccounts(t)
    const reply = await create(t, alice, { title: 'Team' })
    expect(reply.status).toBe(422)
    expect(reply.body.error.details.map((d: { field: string }) => d.field)).toContain('member_ids')
  })

  test('without a token is 401 and creates nothing', async () => {
    await using t = await testApp()
    const { bob } = await threeAccounts(t)
    const reply = await call(t.app, 'POST', '/conversations', { body: { member_ids: [bob.id] } })
    expect(reply.status).toBe(401)
    expect(reply.body.error.code).toBe('missing_token')
    expect(await conversationCount(t)).toBe(0)
  })

  test('malformed JSON is 400 in the error shape', async () => {
    await using t = await testApp()
    const { alice } = await threeAccounts(t)
    const reply = await call(t.app, 'POST', '/conversations', { token: alice.token, raw: '{"member_ids": [' })
    expect(reply.status).toBe(400)
    expect(reply.body).toEqual({ error: { code: 'invalid_json', message: expect.any(String) } })
  })
})

describe('GET /conversations', () => {
  test("lists only the caller's conversations, with members and member_count, as each caller sees them", async () => {
    await using t = await testApp()
    const { alice, bob, carol } = await threeAccounts(t)
    const team = (await create(t, alice, { title: 'Team', member_ids: [bob.id, carol.id] })).body
    const aliceBob = (await create(t, alice, { member_ids: [bob.id] })).body
    const bobCarol = (await create(t, bob, { member_ids: [carol.id] })).body

    const forAlice = await call(t.app, 'GET', '/conversations', { token: alice.token })
    expect(forAlice.status).toBe(200)
    const ids = forAlice.body.conversations.map((c: { id: string }) => c.id)
    expect(ids.sort()).toEqual([team.id, aliceBob.id].sort())
    expect(ids).not.toContain(bobCarol.id)
    const byId = new Map(forAlice.body.conversations.map((c: { id: string }) => [c.id, c]))
    expect(byId.get(team.id)).toEqual({ ...team, last_read_seq: 0, unread_count: 0 })
    expect(byId.get(aliceBob.id)).toEqual({ ...aliceBob, last_read_seq: 0, unread_count: 0 })

    const forCarol = await call(t.app, 'GET', '/conversations', { token: carol.token })
    const carolsView = new Map(forCarol.body.conversations.map((c: { id: string }) => [c.id, c]))
    expect([...carolsView.keys()].sort()).toEqual([team.id, bobCarol.id].sort())
    expect(carolsView.get(bobCarol.id)).toEqual({ ...bobCarol, display_name: bob.username, last_read_seq: 0, unread_count: 0 })
  })

  test('someone in no conversation gets an empty last page', async () => {
    await using t = await testApp()
    const { alice, bob, carol } = await threeAccounts(t)
    await create(t, alice, { member_ids: [bob.id] })
    expect(await call(t.app, 'GET', '/conversations', { token: carol.token })).toMatchObject({ status: 200, body: { conversations: [], next_cursor: null } })
  })

  test('?limit= pages through next_cursor, newest first, each conversation once, to a null cursor', async () => {
    await using t = await testApp()
    const { alice, bob } = await threeAccounts(t)
    const start = Date.now()
    const created: string[] = []
    try {
      for (let i = 0; i < 5; i++) {
        setSystemTime(start + i * 1_000)
        created.push((await create(t, alice, { title: `g${i}`, member_ids: [bob.id], is_group: true })).body.id)
      }
    } finally {
      setSystemTime()
    }
    const pages: string[][] = []
    let path = '/conversations?limit=2'
    for (let i = 0; i < 10; i++) {
      const reply = await call(t.app, 'GET', path, { token: alice.token })
      expect(reply.status).toBe(200)
      pages.push(reply.body.conversations.map((c: { id: string }) => c.id))
      if (reply.body.next_cursor === null) break
      expect(reply.body.next_cursor).toMatch(/^[A-Za-z0-9_-]+$/)
      path = `/conversations?limit=2&cursor=${reply.body.next_cursor}`
    }
    const newestFirst = created.toReversed()
    expect(pages).toEqual([newestFirst.slice(0, 2), newestFirst.slice(2, 4), newestFirst.slice(4)])
  })

  test('without a limit a page holds 50 conversations', async () => {
    await using t = await testApp()
    const { alice, bob } = await threeAccounts(t)
    for (let i = 0; i < 51; i++) expect((await create(t, alice, { title: `g${i}`, member_ids: [bob.id], is_group: true })).status).toBe(201)
    const first = await call(t.app, 'GET', '/conversations', { token: alice.token })
    expect(first.body.conversations.length).toBe(50)
    const rest = await call(t.app, 'GET', `/conversations?cursor=${first.body.next_cursor}`, { token: alice.token })
    expect([rest.body.conversations.length, rest.body.next_cursor]).toEqual([1, null])
  })

  test.each([
    ['a cursor of characters base64url does not use', 'cursor=abc%2B%2F%3D'],
    ['a cursor that decodes to no position', `cursor=${Buffer.from('hello world').toString('base64url')}`],
    ['an empty cursor', 'cursor='],
    ['a cursor given twice', 'cursor=a&cursor=b'],
    ['a limit of 0', 'limit=0'],
    ['a limit of 201', 'limit=201'],
    ['a limit that is not a number', 'limit=many'],
  ])('%s is 422 naming the parameter, never a 500', async (_, query) => {
    await using t = await testApp()
    const { alice, bob } = await threeAccounts(t)
    await create(t, alice, { member_ids: [bob.id] })
    const reply = await call(t.app, 'GET', `/conversations?${query}`, { token: alice.token })
    expect(reply.status).toBe(422)
    expect(reply.body.error.code).toBe('validation_failed')
    expect(reply.body.error.details.map((d: { field: string }) => d.field)).toEqual([query.split('=')[0]])
  })

  test('most recently active first: a new message moves an older conversation above a newer one', async () => {
    await using t = await testApp()
    const { alice, bob, carol } = await threeAccounts(t)
    // A controlled clock, so the order does not depend on two steps landing in different milliseconds.
    const start = Date.now()
    try {
      setSystemTime(start + 1_000)
      const older = (await create(t, alice, { title: 'Older', member_ids: [bob.id], is_group: true })).body
      setSystemTime(start + 2_000)
      const middle = (await create(t, alice, { member_ids: [carol.id] })).body
      setSystemTime(start + 3_000)
      const newer = (await create(t, alice, { title: 'Newer', member_ids: [bob.id, carol.id] })).body

      const before = await call(t.app, 'GET', '/conversations', { token: alice.token })
      expect(before.body.conversations.map((c: { id: string }) => c.id)).toEqual([newer.id, middle.id, older.id])

      setSystemTime(start + 4_000)
      const sent = await send(t.app, bob, older.id, 'bump')
      expect(sent.status).toBe(201)

      const after = await call(t.app, 'GET', '/conversations', { token: alice.token })
      expect(after.body.conversations.map((c: { id: string }) => c.id)).toEqual([older.id, newer.id, middle.id])
      expect(after.body.conversations[0]).toEqual({
        ...older,
        last_seq: 1,
        last_event_seq: 1,
        last_message_at: new Date(start + 4_000).toISOString(),
        last_read_seq: 0,
        unread_count: 1,
      })
      expect(after.body.conversations[0].last_message_at).toBe(sent.body.created_at)
    } finally {
      setSystemTime()
    }
  })

  test('without a token is 401', async () => {
    await using t = await testApp()
    const reply = await call(t.app, 'GET', '/conversations')
    expect(reply.status).toBe(401)
    expect(reply.body.error.code).toBe('missing_token')
  })
})
