/**
 * The message writer itself: what the worker writer (MESSAGE_WRITER=worker) adds to the group
 * commit rules of group-commit.test.ts (which run against both writers).
 */
import { describe, expect, test } from 'bun:test'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as conversations from '../../src/conversations/service'
import { observeQueries } from '../../src/db/client'
import * as messages from '../../src/messages/service'
import { workerCommitter } from '../../src/messages/store.sqlite-worker'
import { createMessageWriter } from '../../src/messages/writer'
import { onPostgres, sqliteOf, testApp, type TestApp } from '../support/app'
import { rejected, user } from '../support/services'

async function room(t: TestApp) {
  const people = await Promise.all(Array.from({ length: 3 }, async () => await user(t)))
  const { conversation } = await conversations.create(t.deps, people[0]!, { title: 'room', member_ids: people.slice(1).map((p) => p.id) })
  return { people, id: conversation.id }
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

describe.skipIf(onPostgres)('the worker writer (SQLite)', () => {
  test('commits on its own connection; posts made while a batch is committing wait and go together in the next one', async () => {
    await using t = await testApp({}, { writer: 'worker' })
    const { people, id } = await room(t)
    let transactions = 0
    observeQueries(sqliteOf(t).sqlite, { statement() {}, transaction: () => void transactions++ })
    // Hold the write lock on the main connection: the worker's first batch waits for it
    // (busy_timeout) while this thread goes on, which an inline writer could not do.
    sqliteOf(t).sqlite.run('BEGIN IMMEDIATE')
    const first = messages.post(t.deps, people[0]!, { message_id: 'first', conversation_id: id, content: 'first' })
    await turn() // the first batch is sent, and blocked
    const later: Array<Promise<messages.PostResult>> = []
    for (let i = 0; i < 5; i++) {
      later.push(messages.post(t.deps, people[i % 3]!, { message_id: `later-${i}`, conversation_id: id, content: `later ${i}` }))
      await turn() // each in a turn of its own: only the batch in flight holds them back
    }
    sqliteOf(t).sqlite.run('COMMIT')
    expect((await first).message.seq).toBe(1)
    expect((await Promise.all(later)).map((r) => [r.message.seq, r.message.content])).toEqual([0, 1, 2, 3, 4].map((i) => [i + 2, `later ${i}`]))
    expect(transactions).toBe(2)
  })

  test('close() commits what is queued before it resolves, and refuses later posts with 503', async () => {
    await using t = await testApp({}, { writer: 'worker' })
    const { people, id } = await room(t)
    // Checked first, so that all ten are in the writer's queue when close() is called.
    const checked = await Promise.all(Array.from({ length: 10 }, (_, i) => messages.check(t.deps, people[0]!, { message_id: `m${i}`, conversation_id: id, content: `m${i}` })))
    const queued = checked.map((job) => messages.write(t.deps, job))
    await t.deps.writer.close()
    expect((await t.sql('SELECT count(*) AS n FROM messages'))[0]).toEqual({ n: 10 })
    expect((await Promise.all(queued)).map((r) => r.message.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    expect(await rejected(messages.post(t.deps, people[0]!, { message_id: 'late', conversation_id: id, content: 'late' }))).toMatchObject({ status: 503 })
  })

  test('a worker that cannot open its database fails the batch with an error instead of leaving it waiting', async () => {
    await using t = await testApp()
    // A path under a file, not a directory: the worker's connection cannot be opened.
    const committer = workerCommitter(sqliteOf(t).sqlite, join(t.dir, 'test.db', 'nested.db'))
    const writer = createMessageWriter({ messages: { ...t.deps.store.messages, commit: (jobs) => committer.commit(jobs) } })
    const job = { senderId: 'u', conversationId: 'c', messageId: 'm', content: 'x', createdAt: Date.now(), replyTo: null }
    await expect(writer.write(job)).rejects.toThrow(/message writer/)
    await expect(writer.write(job)).rejects.toThrow(/message writer/) // and the next batch tries a new worker
    await writer.close()
    await committer.close()
  })

  test('an idle writer does not keep the process alive: a script that never closes it still exits', async () => {
    await using t = await testApp()
    const script = join(t.dir, 'idle-writer.ts')
    const src = (path: string) => JSON.stringify(join(import.meta.dir, '..', '..', 'src', path))
    writeFileSync(
      script,
      `import { openSqliteStore } from ${src('db/store.sqlite')}\nimport { createMessageWriter } from ${src('messages/writer')}\n` +
        `createMessageWriter(openSqliteStore(${JSON.stringify(join(t.dir, 'idle.db'))}, { messageWriter: 'worker' }))\n`,
    )
    // A hang is killed after 10 s (and then is not exit code 0), so it fails without leaving a process behind.
    const child = Bun.spawn([process.execPath, script], { stdout: 'ignore', stderr: 'pipe', timeout: 10_000 })
    expect(await child.exited).toBe(0)
  }, 15_000)
})
