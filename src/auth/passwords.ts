import { availableParallelism } from 'node:os'
import pLimit from 'p-limit'
import { ServiceUnavailable } from '../shared/errors'

// OWASP's baseline for argon2id (m=19 MiB, t=2, p=1): a fraction of Bun's default memory, which
// matters when many logins arrive at once (README, Performance). Stored hashes carry their own
// parameters, so raising these later still verifies old hashes.
const OPTIONS = { algorithm: 'argon2id', memoryCost: 19_456, timeCost: 2 } as const

/**
 * Hashing is CPU-bound: at most all cores but one hash at once, so a login flood always leaves a
 * core to deliver messages. Past MAX_WAITING queued hashes, logins are refused (503) rather than
 * queued without bound.
 */
export const HASHING_CONCURRENCY = Math.max(1, availableParallelism() - 1)
const MAX_WAITING = 200

export function hashingLimit(concurrency: number, maxWaiting: number) {
  const queue = pLimit(concurrency)
  return {
    run<T>(work: () => Promise<T>): Promise<T> {
      if (queue.pendingCount >= maxWaiting) return Promise.reject(new ServiceUnavailable('Too many sign-ins at once: try again shortly'))
      return queue(work)
    },
    /** Hashes being computed now, and waiting for a turn. */
    load: () => ({ active: queue.activeCount, waiting: queue.pendingCount }),
  }
}

const hashing = hashingLimit(HASHING_CONCURRENCY, MAX_WAITING)
const limited = hashing.run
export const hashingLoad = hashing.load

export const hashPassword = (password: string): Promise<string> => limited(() => Bun.password.hash(password, OPTIONS))

/** False for a wrong password and for a stored hash that is malformed (verify would throw). */
export function verifyPassword(password: string, hash: string): Promise<boolean> {
  return limited(async () => {
    try {
      return await Bun.password.verify(password, hash)
    } catch {
      return false
    }
  })
}

let dummyHash: Promise<string> | undefined

/** Verifying against this for unknown users makes their login cost the same as a wrong password. */
export const dummyPasswordHash = (): Promise<string> => (dummyHash ??= hashPassword(`dummy-${crypto.randomUUID()}`))
