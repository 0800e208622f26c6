import type Redis from 'ioredis'
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible'

/**
 * Where rate-limit counts live: this process's memory (one node), or Redis, shared by every node,
 * so a limit is the same whichever node a client's requests reach (rate-limiter-flexible's
 * RateLimiterRedis). While Redis cannot answer, each node counts in memory instead (its insurance
 * limiter): limits still hold, per node, and no request fails because of it.
 */
export type Limits = {
  /** A fixed window of `points` per key per `seconds`, its keys apart from other windows' by `name`. */
  window(name: string, points: number, seconds: number): RateLimiterAbstract
}

export const memoryLimits: Limits = {
  window: (_name, points, duration) => new RateLimiterMemory({ points, duration }),
}

export function redisLimits(client: Redis): Limits {
  return {
    window: (name, points, duration) =>
      new RateLimiterRedis({
        storeClient: client,
        keyPrefix: `pneumatic:limit:${name}`,
        points,
        duration,
        insuranceLimiter: new RateLimiterMemory({ points, duration }),
      }),
  }
}
