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
 * many groups and their index entries lie on many pages) and 64 1-on-1s, made by the service.
 * Then, each many times over, and each batch into conversations not written since the last round:
 * - one message into a 1-on-1;
 * - one message into a group of 500;
 * - 32 messages into one group of 500 (one batch);
 * - 64 messages, one into each of 64 groups of 500 (one batch): the most member rows a batch moves.
 */
import { join } from 'node:path'
import * as conversations from '../src/conversations/service'
import { openDatabase } from '../src/db/client'
import { commitBatch, type WriteJob } from '../src/messages/store'
import * as users from '../src/users/service'
import { pinLoadGenerator, removeDir, temporaryDir } from './lib'

const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback)
const GROUPS = arg('groups', 200)
const POOL = 2_000
const ROUNDS = 40

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

pinLoadGenerator() // this process is the server here: keep it on one core, as the bench's servers are
const dir = temporaryDir('pneumatic-group-writes-')
try {
  const { db, close } = openDatabase(join(dir, 'writes.db'))
  try {
    const deps = { db, bus: { publish() {} } }
    const people = Array.from({ length: POOL }, (_, i) => users.create(db, { username: `writer_${i}`, fullName: null, passwordHash: 'x' }))
    const groups = Array.from({ length: GROUPS }, (_, g) => {
      const members = Array.from({ length: 499 }, (_, k) => people[(g * 499 + k + 1) % POOL]!.id).filter((id) => id !== people[g % POOL]!.id)
      return conversations.create(deps as never, people[g % POOL]!, { title: `group ${g}`, member_ids: members }).conversation
    })
    const pairs = Array.from({ length: 64 }, (_, p) => conversations.create(deps as never, people[2 * p]!, { member_ids: [people[2 * p + 1]!.id] }).conversation)

    let n = 0
    const job = (conversationId: string, senderId: string): WriteJob => ({
      senderId,
      conversationId,
      messageId: Bun.randomUUIDv7(),
      content: `message ${++n}`,
      createdAt: Date.now(),
    })
    const timed = (jobs: WriteJob[]) => {
      const started = performance.now()
      const outcomes = commitBatch(db, jobs)
      const ms = performance.now() - started
      if (outcomes.some((o) => o.kind !== 'stored')) throw new Error(JSON.stringify(outcomes.find((o) => o.kind !== 'stored')))
      return ms
    }
    const group = (i: number) => groups[i % groups.length]!
    const shapes: Array<[string, number, (round: number) => WriteJob[]]> = [
      ['1 message into a 1-on-1', 1, (r) => [job(pairs[r % pairs.length]!.id, pairs[r % pairs.length]!.members[0]!.id)]],
      ['1 message into a group of 500', 1, (r) => [job(group(r).id, group(r).members[0]!.id)]],
      ['32 messages into one group of 500', 32, (r) => Array.from({ length: 32 }, () => job(group(r + 7).id, group(r + 7).members[0]!.id))],
      ['64 messages into 64 groups of 500', 64, (r) => Array.from({ length: 64 }, (_, k) => job(group(r * 64 + k).id, group(r * 64 + k).members[0]!.id))],
    ]
    for (const [name, size, make] of shapes) {
      for (let r = 0; r < 3; r++) timed(make(r)) // warm the statements and the cache
      const times = Array.from({ length: ROUNDS }, (_, r) => timed(make(r + 3)))
      console.log(`${name}: ${median(times).toFixed(2)} ms a commit (median of ${ROUNDS}), ${(median(times) / size).toFixed(3)} ms a message`)
    }
  } finally {
    close()
  }
} finally {
  removeDir(dir)
}
