/**
 * Group commit: posts made in the same turn of the event loop share one transaction (one fsync),
 * and each is acknowledged only after that transaction commits. The same rules hold for both
 * writers: inline (the default) and worker (MESSAGE_WRITER=worker).
 */
import { describe, expect, setSystemTime, test } from 'bun:test'
import * as conversations from '../../src/conversations/service'
import * as messages from '../../src/messages/service'
import type { MessageWriterKind } from '../../src/config'
import { wholeSecond } from '../../src/shared/time'
import { onPostgres, testApp, type TestApp } from '../support/app'
import { events, rejected, user } from '../support/services'

/** Five users in one group conversation. */
async function group(t: TestApp) {
  const people = await Promise.all(Array.from({ length: 5 }, async () => await user(t)))
  const room = (await conversations.create(t.deps, people[0]!, { title: 'room', member_ids: people.slice(1).map((p) => p.id) })).conversation
  // Memberships confirmed once, as a sender's first message does: the posts below then reach the
  // writer in the turn they are made, on either engine, rather than after a read of their own.
  await Promise.all(people.map((p) => conversations.requireMember(t.deps.store, p, room.id)))
  return { people, room }
}

/** Counts committed write transactions, and notes each commit in `timeline`. */
function watchCommits(t: TestApp, timeline: string[] = []) {
  const seen = { transactions: 0 }
  t.deps.store.observe({
    statement() {},
    transaction() {
      seen.transactions++
      timeline.push('commit')
    },
  })
  return seen
}

const storedSeqs = async (t: TestApp) => (await t.sql<{ seq: number }>('SELECT seq FROM messages ORDER BY seq')).map((r) => r.seq)

/**
 * Notes every update of a member row in `member_updates` (a trigger in the database, so the worker's
 * own connection counts too): its conversation and the activity it set.
 */
async function noteMemberUpdates(t: TestApp): Promise<void> {
  if (onPostgres) {
    await t.sql('CREATE TABLE member_updates (conversation_id TEXT COLLATE "C", at BIGINT)')
    await t.sql(
      'CREATE FUNCTION note_member_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO member_updates VALUES (NEW.conversation_id, NEW.last_activity_at); RETURN NEW; END $$',
    )
    await t.sql('CREATE TRIGGER count_member_updates AFTER UPDATE ON conversation_members FOR EACH ROW EXECUTE FUNCTION note_member_update()')
  } else {
    await t.sql('CREATE TABLE member_updates (conversation_id TEXT, at INTEGER)')
    await t.sql('CREATE TRIGGER count_member_updates AFTER UPDATE ON conversation_members BEGIN INSERT INTO member_updates VALUES (NEW.conversation_id, NEW.last_activity_at); END')
  }
}

// The worker writer is SQLite's alone (MESSAGE_WRITER=worker is refused on PostgreSQL).
const WRITERS: MessageWriterKind[] = onPostgres ? ['inline'] : ['worker', 'inline']

describe.each(WRITERS)('group commit, %s writer', (writer) => {
  test('concurrent posts from several senders commit in one transaction, numbered in the order they were made', async () => {
    await using t = await testApp({}, { writer })
    const { people, room } = await group(t)
    const commits = watchCommits(t)
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => messages.post(t.deps, people[i % people.length]!, { message_id: `m${i}`, conversation_id: room.id, content: `message ${i}` })),
    )
    expect(commits.transactions).toBe(1)
    expect(results.map((r) => [r.created, r.message.seq, r.message.content])).toEqual(Array.from({ length: 40 }, (_, i) => [true, i + 1, `message ${i}`]))
    expect(await storedSeqs(t)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
  })

  test('each post is acknowledged and announced only after its batch has committed', async () => {
    await using t = await testApp({}, { writer })
    const { people, room } = await group(t)
    const timeline: string[] = []
    watchCommits(t, timeline)
    t.deps.bus.subscribe(() => timeline.push('announce'))
    await Promise.all(
      [0, 1, 2].map((i) => messages.post(t.deps, people[i]!, { message_id: `m${i}`, conversation_id: room.id, content: 'hi' }).then(() => timeline.push('ack'))),
    )
    expect(timeline).toEqual(['commit', 'announce', 'announce', 'announce', 'ack', 'ack', 'ack'])
  })

  test('a batch larger than the cap is split into several transactions, still in order', async () => {
    await using t = await testApp({}, { writer })
    const { people, room } = await group(t)
    const commits = watchCommits(t)
    const results = await Promise.all(
      Array.from({ length: 600 }, (_, i) => messages.post(t.deps, people[i % people.length]!, { message_id: `m${i}`, conversation_id: room.id, content: 'x' })),
    )
    expect(commits.transactions).toBe(3) // 256 + 256 + 88
    expect(results.map((r) => r.message.seq)).toEqual(Array.from({ length: 600 }, (_, i) => i + 1))
  })

  test('a retry in the same batch is answered with the stored message, and a conflicting reuse with 409, without failing the batch', async () => {
    await using t = await testApp({}, { writer })
    const { people, room } = await group(t)
    const [alice, bob] = people as [typeof people[0], typeof people[0]]
    const seen = events(t)
    const commits = watchCommits(t)
    const input = { message_id: 'k', conversation_id: room.id, content: 'hi' }
    const [first, retry, conflict, other] = [
      messages.post(t.deps, alice, input),
      messages.post(t.deps, alice, input),
      messages.post(t.deps, alice, { ...input, content: 'changed' }),
      messages.post(t.deps, bob, input),
    ]
    const stored = await first
    expect(await retry).toEqual({ created: false, message: stored.message })
    expect(await rejected(conflict)).toMatchObject({ status: 409, code: 'conflict' })
    expect((await other).message).toMatchObject({ sender_id: bob.id, seq: 2 })
    expect(commits.transactions).toBe(1)
    // Each new message announced once; the retry only as a check of its conversation.
    expect(seen.map((e) => (e.type === 'conversation.changed' && e.change.type === 'message' ? [e.change.message.seq, e.change.event_seq] : e.type))).toEqual([
      [1, 1],
      'conversation.check',
      [2, 2],
    ])
  })

  test('a message the database refuses fails alone: the rest of its batch is stored without a gap in seq', async () => {
    await using t = await testApp({}, { writer })
    const { people, room } = await group(t)
    if (onPostgres) await t.sql("ALTER TABLE messages ADD CONSTRAINT refused_by_check CHECK (content <> 'poison')")
    else await t.sql("CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.content = 'poison' BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END")
    const posts = ['one', 'poison', 'two', 'three'].map((content, i) => messages.post(t.deps, people[i]!, { message_id: `m${i}`, conversation_id: room.id, content }))
    const settled = await Promise.allSettled(posts)
    expect(settled.map((s) => (s.status === 'fulfilled' ? s.value.message.content : 'refused'))).toEqual(['one', 'refused', 'two', 'three'])
    const poisoned = settled[1]!
    const refusal = poisoned.status === 'rejected' ? String(poisoned.reason.message) : ''
    expect(refusal).toMatch(onPostgres ? /refused_by_check/ : /refused by trigger/)
    expect(await storedSeqs(t)).toEqual([1, 2, 3])
  })

  test("a batch moves each conversation's activity on its member rows once, to its newest message's second, whatever the number of messages", async () => {
    await using t = await testApp({}, { writer })
    const { people, room } = await group(t)
    const pair = (await conversations.create(t.deps, people[0]!, { member_ids: [people[1]!.id] })).conversation
    await noteMemberUpdates(t)
    const updates = () => t.sql('SELECT conversation_id AS id, count(*) AS n, max(at) AS at FROM member_updates GROUP BY 1 ORDER BY 1')
    const start = wholeSecond(Date.now()) + 10_500 // the 40 messages cross into the next second
    const posted = await (async () => {
      try {
        return await Promise.all(
          Array.from({ length: 40 }, (_, i) => {
            setSystemTime(start + i) // each message made a millisecond after the last
            return messages.post(t.deps, people[i % 2]!, { message_id: `m${i}`, conversation_id: i % 4 === 0 ? pair.id : room.id, content: 'hi' })
          }),
        )
      } finally {
        setSystemTime()
      }
    })()
    const newest = (id: string) => wholeSecond(Math.max(...posted.filter((p) => p.message.conversation_id === id).map((p) => Date.parse(p.message.created_at))))
    expect(await updates()).toEqual(
      [
        { id: room.id, n: 5, at: newest(room.id) },
        { id: pair.id, n: 2, at: newest(pair.id) },
      ].toSorted((a, b) => (a.id < b.id ? -1 : 1)),
    )
    // A retry stores nothing new, so nothing becomes more active.
    expect((await messages.post(t.deps, people[0]!, { message_id: 'm0', conversation_id: pair.id, content: 'hi' })).created).toBe(false)
    expect(await t.sql('SELECT count(*) AS n FROM member_updates')).toEqual([{ n: 7 }])
  })

  test('a later batch in the same second leaves the member rows alone; the next second moves them again', async () => {
    await using t = await testApp({}, { writer })
    const { people, room } = await group(t)
    await noteMemberUpdates(t)
    const second = wholeSecond(Date.now()) + 60_000
    const postAt = async (when: number, id: string) => {
      setSystemTime(when)
      try {
        return await messages.post(t.deps, people[0]!, { message_id: id, conversation_id: room.id, content: 'hi' })
      } finally {
        setSystemTime()
      }
    }
    for (const [offset, id] of [[0, 'a'], [400, 'b'], [999, 'c'], [1_000, 'd']] as const) await postAt(second + offset, id)
    const writes = await t.sql('SELECT at, count(*) AS n FROM member_updates GROUP BY at ORDER BY at')
    expect(writes).toEqual([
      { at: second, n: 5 },
      { at: second + 1_000, n: 5 },
    ])
  })

  test('posts that arrive in different turns of the event loop are not held back for each other', async () => {
    await using t = await testApp({}, { writer })
    const { people, room } = await group(t)
    const commits = watchCommits(t)
    for (let i = 0; i < 3; i++) await messages.post(t.deps, people[0]!, { message_id: `m${i}`, conversation_id: room.id, content: 'hi' })
    expect(commits.transactions).toBe(3)
  })
})
