import { describe, expect, spyOn, test } from 'bun:test'
import { eq } from 'drizzle-orm'
import { HASHING_CONCURRENCY, hashingLimit, hashingLoad } from '../../src/auth/passwords'
import { users } from '../../src/db/schema'
import { ServiceUnavailable } from '../../src/shared/errors'
import { sqliteOf, testApp } from '../support/app'
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
    await using t = await testApp()
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

  // Equal cost is shown by equal work, not by a stopwatch (timings flake on a shared machine):
  // each refusal runs exactly one verification, against a hash with the same argon2 parameters.
  test('an unknown user and a wrong password do the same work: one verification at the same cost parameters, and the same answer', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const stored = sqliteOf(t).db.select({ hash: users.passwordHash }).from(users).where(eq(users.id, alice.id)).get()!.hash
    const parameters = (hash: string) => hash.split('$').slice(1, 4).join('$') // argon2id, v=19, m=…,t=…,p=…
    const attempt = async (username: string) => {
      const verify = spyOn(Bun.password, 'verify')
      try {
        const reply = await call(t.app, 'POST', '/auth/login', { body: { username, password: 'not the password' } })
        return { reply, hashes: verify.mock.calls.map(([, hash]) => parameters(String(hash))) }
      } finally {
        verify.mockRestore()
      }
    }
    const wrong = await attempt(alice.username)
    const unknown = await attempt('nobody_at_all')
    expect(wrong.hashes).toEqual([parameters(stored)])
    expect(unknown.hashes).toEqual([parameters(stored)])
    expect(unknown.reply.status).toBe(401)
    expect(unknown.reply.body).toEqual(wrong.reply.body)
  })
})
