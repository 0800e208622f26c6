import { type RateLimiterAbstract, RateLimiterRes } from 'rate-limiter-flexible'
import type { Config } from '../config'
import { TooManyRequests } from '../shared/errors'
import { retrySeconds } from '../shared/time'
import { type Limits, memoryLimits } from '../limits/counters'

/**
 * What password guessing looks like, throttled (OWASP's authentication cheat sheet): failed logins
 * per client IP and per username, each against its own limit, and signups per IP, in windows of
 * `authLimitWindowSeconds`. A successful login never counts, so a team behind one office NAT, or
 * a client that logs in again and again, is never locked out by its own successes; a success also
 * clears its username's failures. When a limit is spent the answer is 429 with Retry-After, for
 * the right password too: otherwise guessing would just go on.
 *
 * Counted where `limits` keeps them: in this process, or in Redis for every node (limits/counters.ts).
 */
export type AuthThrottle = {
  /**
   * Before a password is checked: reserves one failure of the IP and of the username (so attempts
   * racing in parallel cannot get past a limit together), or refuses with 429. Settle it with the
   * outcome: a failure keeps the reservation, anything else gives it back.
   */
  loginAttempt(ip: string, username: string): Promise<LoginAttempt>
  /** Counts one signup of the IP, or refuses with 429. */
  signup(ip: string): Promise<void>
}

type LoginAttempt = { settle(outcome: 'failed' | 'succeeded' | 'not-tried'): Promise<void> }

type Limiter = { limiter: RateLimiterAbstract; key: string }

function refusal(rejection: unknown, what: string): TooManyRequests {
  if (!(rejection instanceof RateLimiterRes)) throw rejection
  const retryAfter = retrySeconds(rejection.msBeforeNext)
  return new TooManyRequests(`${what}: try again in ${retryAfter} s`, retryAfter)
}

const NOTHING_TO_SETTLE: LoginAttempt = { settle: async () => {} }

export function createAuthThrottle(
  config: Pick<Config, 'loginFailureLimitPerIp' | 'loginFailureLimitPerUsername' | 'signupLimitPerIp' | 'authLimitWindowSeconds'>,
  limits: Limits = memoryLimits,
): AuthThrottle {
  const seconds = config.authLimitWindowSeconds
  const window = (name: string, points: number) => (points > 0 ? limits.window(name, points, seconds) : null)
  const failuresByIp = window('login-failures:ip', config.loginFailureLimitPerIp)
  const failuresByUsername = window('login-failures:username', config.loginFailureLimitPerUsername)
  const signupsByIp = window('signups:ip', config.signupLimitPerIp)

  return {
    async loginAttempt(ip, username) {
      // Usernames are unique in any case, so are their failures.
      const counted: Limiter[] = []
      if (failuresByIp) counted.push({ limiter: failuresByIp, key: ip })
      if (failuresByUsername) counted.push({ limiter: failuresByUsername, key: username.toLowerCase() })
      if (counted.length === 0) return NOTHING_TO_SETTLE
      const reserved: Limiter[] = []
      for (const entry of counted) {
        try {
          await entry.limiter.consume(entry.key)
          reserved.push(entry)
        } catch (rejection) {
          await Promise.all(reserved.map((r) => r.limiter.reward(r.key)))
          throw refusal(rejection, 'Too many failed logins')
        }
      }
      return {
        async settle(outcome) {
          if (outcome === 'failed') return
          await Promise.all(
            reserved.map((r) => (outcome === 'succeeded' && r.limiter === failuresByUsername ? r.limiter.delete(r.key) : r.limiter.reward(r.key))),
          )
        },
      }
    },
    async signup(ip) {
      if (!signupsByIp) return
      try {
        await signupsByIp.consume(ip)
      } catch (rejection) {
        throw refusal(rejection, 'Too many signups from this address')
      }
    },
  }
}
