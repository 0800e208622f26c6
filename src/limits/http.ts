import { Elysia } from 'elysia'
import { type RateLimiterAbstract, RateLimiterRes } from 'rate-limiter-flexible'
import { credentialsOf } from '../auth/credentials'
import { openSessionUserId } from '../auth/service'
import type { TokenKind } from '../auth/tokens'
import type { AppDeps } from '../deps'
import { TooManyRequests } from '../shared/errors'
import { clientIp, type RequestIp } from '../shared/http'
import { retrySeconds } from '../shared/time'
import type { Limits } from './counters'

/**
 * Rate limits, on rate-limiter-flexible's fixed windows (a key's window starts with its first
 * request), counted where `deps.limits` keeps them: in this process, or in Redis for every node
 * (limits/counters.ts).
 *
 * HTTP: every request but the exempt ones counts once, per verified user or else per client IP,
 * against a minute and an hour window. (Password guessing is throttled by its failures, in
 * auth/throttle.ts.) A WebSocket connection's frames have limits of their own (realtime/frame-limits.ts).
 */

/** Monitoring, docs and static assets are never limited and carry no rate-limit headers. */
const EXEMPT = new Set(['/health', '/ready', '/metrics', '/docs'])
const EXEMPT_PREFIXES = ['/docs/', '/static/']

type Window = { limiter: RateLimiterAbstract; points: number; durationMs: number }
type Check = { window: Window; key: string }

function fixedWindow(limits: Limits, name: string, points: number, durationSeconds: number): Window | null {
  if (points <= 0) return null
  return { limiter: limits.window(name, points, durationSeconds), points, durationMs: durationSeconds * 1000 }
}

function isExempt(path: string): boolean {
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path
  return EXEMPT.has(trimmed) || EXEMPT_PREFIXES.some((prefix) => path.startsWith(prefix))
}

/**
 * The user whose budget a request spends: the owner of the first credential (bearer header,
 * ?token= on the WebSocket upgrade, the web UI's session cookies) that belongs to an OPEN session,
 * as the auth service decides. Any other token names nobody, or anyone holding a forged, logged-out
 * or used-up token could spend someone else's budget; the request then counts per IP.
 */
async function verifiedUserId(deps: Pick<AppDeps, 'store' | 'tokens' | 'config'>, request: Request, url: URL): Promise<string | null> {
  const { token, access, refresh } = credentialsOf(request, url.pathname === '/ws' ? url.searchParams.get('token') : undefined)
  const candidates: Array<[string | undefined, TokenKind]> = [
    [token, 'access'],
    [access, 'access'],
    [refresh, 'refresh'],
  ]
  for (const [presented, kind] of candidates) {
    const userId = presented ? await openSessionUserId(deps, presented, kind) : null
    if (userId) return userId
  }
  return null
}

export type Verdict = {
  /** The smallest per-minute limit that applies (the hourly one when no per-minute limit is on). */
  limit: number
  /** The fewest requests left in any window that applies. */
  remaining: number
  /** Milliseconds until the binding window (the one leaving the fewest) resets; the latest such. */
  resetMs: number
  refused: boolean
}

/**
 * Counts one request in each window, in order. Once a window refuses, later ones are only read,
 * so refused requests do not use up the longer windows.
 */
async function evaluate(checks: Check[]): Promise<Verdict> {
  const seen: Array<{ window: Window; res: RateLimiterRes | null }> = []
  let refused = false
  for (const { window, key } of checks) {
    if (refused) {
      seen.push({ window, res: await window.limiter.get(key) })
      continue
    }
    try {
      seen.push({ window, res: await window.limiter.consume(key) })
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection
      seen.push({ window, res: rejection })
      refused = true
    }
  }
  const states = seen.map(({ window, res }) => ({
    points: window.points,
    perMinute: window.durationMs === 60_000,
    remaining: res ? Math.max(window.points - res.consumedPoints, 0) : window.points,
    resetMs: res && res.msBeforeNext >= 0 ? res.msBeforeNext : window.durationMs,
  }))
  const remaining = Math.min(...states.map((s) => s.remaining))
  const resetMs = Math.max(...states.filter((s) => s.remaining === remaining).map((s) => s.resetMs))
  const perMinute = states.filter((s) => s.perMinute)
  const limit = Math.min(...(perMinute.length > 0 ? perMinute : states).map((s) => s.points))
  return { limit, remaining, resetMs, refused }
}

/**
 * The HTTP limit, as an onRequest hook: a throttled request is refused before routing, body
 * parsing or authentication. Each call has its own counters (an app each).
 */
export function rateLimit(deps: Pick<AppDeps, 'config' | 'store' | 'tokens' | 'logger' | 'limits'>) {
  const { config } = deps
  const minute = fixedWindow(deps.limits, 'http:minute', config.rateLimitPerMinute, 60)
  const hour = fixedWindow(deps.limits, 'http:hour', config.rateLimitPerHour, 3600)
  // Every limit off: no hook at all, rather than one that resolves the client's address for nothing.
  if (!minute && !hour) return new Elysia()

  return new Elysia().onRequest(async ({ request, server, set }) => {
    const url = new URL(request.url)
    if (isExempt(url.pathname)) return
    const userId = await verifiedUserId(deps, request, url)
    const key = userId ? `user:${userId}` : `ip:${clientIp(request, server as RequestIp, config.trustProxyHops)}`
    const checks: Check[] = []
    if (minute) checks.push({ window: minute, key })
    if (hour) checks.push({ window: hour, key })

    let verdict: Verdict
    try {
      verdict = await evaluate(checks)
    } catch (error) {
      // A limiter whose store fails lets requests through: an outage of it must not be one of ours.
      deps.logger.error({ err: error }, 'rate limiter failed; request let through')
      return
    }
    set.headers['x-ratelimit-limit'] = String(verdict.limit)
    set.headers['x-ratelimit-remaining'] = String(verdict.remaining)
    set.headers['x-ratelimit-reset'] = String(Math.ceil((Date.now() + verdict.resetMs) / 1000))
    if (verdict.refused) {
      const retryAfter = retrySeconds(verdict.resetMs)
      set.headers['retry-after'] = String(retryAfter)
      // Thrown, not returned: onError renders it in the error shape, with the headers set above.
      throw new TooManyRequests(`Too many requests: try again in ${retryAfter} s`)
    }
  })
}
