/**
 * bun bench/group-writes.ts [--groups=200]
 *
 * What a committed message costs by the size of its conversation: the message writer's own
 * commitBatch (messages/store.ts) on a real file with Pneumatic's pragmas (WAL, synchronous=FULL),
 * in this process, no server. A message also moves its conversation's activity on each member's
 * row, once per conversation per batch, so the cost of a batch grows with the members of the
 * conversations in it; this measures how much. Not part of `bun run bench`: it reports absolute
 * figures for a before/after comparison of two checkouts on the same machine, and uses only
 * services every release has, so the same file runs in an older checkout (copy it there).
 *
 * `groups` groups of 500 members (the creator and 499 of 2,000 users, in turn, so each user is in
 * many groups and their index entries lie on many pages), 100 1-on-1s and a group of 32, made by
 * the service. Then each batch shape below, many times over, reporting the median wall time of a
 * commit (its fsync included) and the median CPU time of this process for it. Messages carry the
 * time of a clock kept here: a millisecond between batches where conversations are busy (as in
 * the bench, where each gets a message in most batches), a second where they are not:
 * - the bench's shapes (bench/scenarios), busy: 64 messages into one 1-on-1 (durable POST
 *   /messages), 64 into 64 1-on-1s (durable WebSocket), 128 into the group of 32 (fan-out to 32),
 *   256 across the 100 1-on-1s (fan-out to 1,000);
 * - one message into a 1-on-1, and into a group of 500, not busy;
 * - 32 messages into one group of 500, busy;
 * - 64 messages, one into each of 64 groups of 500, not busy: the most member rows a batch moves.
 */
import { join } from 'node:path'
import * as conversations from '../src/conversations/service'
import { openSqliteStore } from '../src/db/store.sqlite'
import { commitBatch } from '../src/messages/store.sqlite'
import type { WriteJob } from '../src/messages/store'
import * as users from '../src/users/service'
import type { User } from '../src/users/model'
import type { ConversationRecord } from '../src/conversations/model'
import { pinLoadGenerator, removeDir, temporaryDir } from './lib'

const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback)
const GROUPS = arg('groups', 200)
const POOL = 2_000
const ROUNDS = 40

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

pinLoadGenerator() // this process is the server here: keep it on one core, as the bench's servers are
const dir = temporaryDir('pneumatic-group-writes-')
try {
  const store = openSqliteStore(join(dir, 'writes.db'))
  const { db } = store
  try {
    const deps = { store, bus: { publish() {} } }
    const people: User[] = []
    for (let i = 0; i < POOL; i++) people.push(await users.create(store, { username: `writer_${i}`, fullName: null, passwordHash: 'x' }))
    const groups: ConversationRecord[] = []
    for (let g = 0; g < GROUPS; g++) {
      const members = Array.from({ length: 499 }, (_, k) => people[(g * 499 + k + 1) % POOL]!.id).filter((id) => id !== people[g % POOL]!.id)
      groups.push((await conversations.create(deps, people[g % POOL]!, { title: `group ${g}`, member_ids: members })).conversation)
    }
    const pairs: ConversationRecord[] = []
    for (let p = 0; p < 100; p++) pairs.push((await conversations.create(deps, people[2 * p]!, { member_ids: [people[2 * p + 1]!.id] })).conversation)
    const team = (await conversations.create(deps, people[0]!, { title: 'team', member_ids: people.slice(1, 32).map((p) => p.id) })).conversation

    let n = 0
    let clock = Date.now()
    const job = (conversationId: string, senderId: string): WriteJob => ({
      senderId,
      conversationId,
      messageId: Bun.randomUUIDv7(),
      content: `message ${++n}`,
      createdAt: clock,
      replyTo: null,
    })
    const timed = (jobs: WriteJob[]) => {
      const started = performance.now()
      const cpu = process.cpuUsage()
      const outcomes = commitBatch(db, jobs)
      const used = process.cpuUsage(cpu)
      const ms = performance.now() - started
      if (outcomes.some((o) => o.kind !== 'stored')) throw new Error(JSON.stringify(outcomes.find((o) => o.kind !== 'stored')))
      return { ms, cpuMs: (used.user + used.system) / 1000 }
    }
    const group = (i: number) => groups[i % groups.length]!
    const pair = (i: number) => pairs[i % pairs.length]!
    const BUSY = 1
    const IDLE = 1_000
    const shapes: Array<[string, number, number, (round: number) => WriteJob[]]> = [
      ['64 messages into one 1-on-1, busy', 64, BUSY, (r) => Array.from({ length: 64 }, () => job(pair(r).id, pair(r).members[0]!.id))],
      ['64 messages into 64 1-on-1s, busy', 64, BUSY, (r) => Array.from({ length: 64 }, (_, k) => job(pair(r + k).id, pair(r + k).members[0]!.id))],
      ['128 messages into a group of 32, busy', 128, BUSY, () => Array.from({ length: 128 }, (_, k) => job(team.id, team.members[k % 32]!.id))],
      ['256 messages across 100 1-on-1s, busy', 256, BUSY, () => Array.from({ length: 256 }, (_, k) => job(pair(k).id, pair(k).members[k % 2]!.id))],
      ['1 message into a 1-on-1', 1, IDLE, (r) => [job(pair(r).id, pair(r).members[0]!.id)]],
      ['1 message into a group of 500', 1, IDLE, (r) => [job(group(r).id, group(r).members[0]!.id)]],
      ['32 messages into one group of 500, busy', 32, BUSY, () => Array.from({ length: 32 }, () => job(group(7).id, group(7).members[0]!.id))],
      ['64 messages into 64 groups of 500', 64, IDLE, (r) => Array.from({ length: 64 }, (_, k) => job(group(r * 64 + k).id, group(r * 64 + k).members[0]!.id))],
    ]
    for (const [name, size, step, make] of shapes) {
      const batch = (r: number) => {
        clock += step
        return timed(make(r))
      }
      clock += IDLE
      for (let r = 0; r < 3; r++) batch(r) // warm the statements and the cache
      const runs = Array.from({ length: ROUNDS }, (_, r) => batch(r + 3))
      const wall = median(runs.map((t) => t.ms))
      const cpu = median(runs.map((t) => t.cpuMs))
      console.log(`${name}: ${wall.toFixed(2)} ms a commit, ${cpu.toFixed(2)} ms CPU (medians of ${ROUNDS}); ${((cpu * 1000) / size).toFixed(1)} µs CPU a message`)
    }
  } finally {
    await store.close()
  }
} finally {
  removeDir(dir)
}
