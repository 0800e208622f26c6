import { describe, expect, test } from 'bun:test'
import { HASHING_CONCURRENCY, hashingLimit, hashingLoad } from '../../src/auth/passwords'
import { ServiceUnavailable } from '../../src/shared/errors'
import { testApp } from '../support/app'
import { account, call, conversation, send } from '../support/http'

describe('the hashing limit', () => {
  test('runs at most `concurrency` at once, queues the rest in order, and refuses past the queue bound', async () => {
    const limit = hashingLimit(1, 2)
    const release: Array<() => void> = []
    const started: number[] = []
    const job = (n: number) => () => new Promise<number>((resolve) => (started.push(n), release.push(() => resolve(n))))
    const runs = [limit.run(job(1)), limit.run(job(2)), limit.run(job(3))]
    await Promise.resolve()
    expect(limit.load()).toEqual({ active: 1, waiting: 2 })
    await expect(limit.run(job(4))).rejects.toBeInstanceOf(ServiceUnavailable)
    for (let i = 0; i < 3; i++) {
      while (release.length === 0) await Promise.resolve()
      release.shift()!()
      await runs[i]
    }
    expect(await Promise.all(runs)).toEqual([1, 2, 3])
    expect(started).toEqual([1, 2, 3])
  })
})

describe('logins under load', () => {
  test('a login flood hashes at most the cap at once, and messages are answered while logins still wait', async () => {
    await using t = testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    const flood = Array.from({ length: HASHING_CONCURRENCY * 4 + 4 }, () => call(t.app, 'POST', '/auth/login', { body: { username: alice.username, password: 'wrong password' } }))
    const sent = await send(t.app, bob, direct.id, 'still flowing')
    expect(sent.status).toBe(201)
    const during = hashingLoad()
    expect(during.waiting).toBeGreaterThan(0) // the message did not wait behind them
    expect(during.active).toBeLessThanOrEqual(HASHING_CONCURRENCY)
    expect((await Promise.all(flood)).map((r) => r.status)).toEqual(flood.map(() => 401))
  }, 60_000)

  test('an unknown user and a wrong password take the same time: medians of 30 tries within 20% of each other', async () => {
    await using t = testApp()
    const alice = await account(t.app)
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    const timed = async (username: string) => {
      const start = performance.now()
      const reply = await call(t.app, 'POST', '/auth/login', { body: { username, password: 'not the password' } })
      expect(reply.status).toBe(401)
      return performance.now() - start
    }
    const wrong: number[] = []
    const unknown: number[] = []
    // Interleaved, so drift on a shared machine hits both alike.
    for (let i = 0; i < 30; i++) {
      wrong.push(await timed(alice.username))
      unknown.push(await timed(`nobody_${i}`))
    }
    const ratio = median(unknown) / median(wrong)
    expect(ratio).toBeGreaterThan(0.8)
    expect(ratio).toBeLessThan(1.2)
  }, 60_000)
})
