import { isIP } from 'node:net'
import { Elysia } from 'elysia'
import { type RateLimiterAbstract, RateLimiterRes } from 'rate-limiter-flexible'
import { ACCESS_COOKIE, bearerToken } from '../auth/credentials'
import { openSessionUserId } from '../auth/service'
import type { TokenKind } from '../auth/tokens'
import type { Config } from '../config'
import type { AppDeps } from '../deps'
import { TooManyRequests } from '../shared/errors'
import type { Limits } from '../shared/limits'
import { forwardedByProxy } from '../shared/http'
import { REFRESH_COOKIE } from '../ui/session'

/**
 * Rate limits, on rate-limiter-flexible's fixed windows (a key's window starts with its first
 * request), counted where `deps.limits` keeps them: in this process, or in Redis for every node
 * (shared/limits.ts).
 *
 * HTTP: every request but the exempt ones counts once, per verified user or else per client IP,
 * against a minute and an hour window. (Password guessing is throttled by its failures, in
 * auth/throttle.ts.) A WebSocket connection counts its frames against a minute window of its own.
 */

/** Monitoring, docs and static assets are never limited and carry no rate-limit headers. */
const EXEMPT = new Set(['/health', '/ready', '/metrics', '/docs'])
const EXEMPT_PREFIXES = ['/docs/', '/static/']

/** The 10th frame refused within one window closes the socket (1008): it is not slowing down. */
export const FRAME_REFUSALS_BEFORE_CLOSE = 10

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

/** An address as one key: lowercase, an IPv4-mapped IPv6 address as its IPv4 form; null if it is none. */
function normalizeIp(raw: string | undefined): string | null {
  if (!raw) return null
  let address = raw.trim().toLowerCase()
  // Some proxies append a port: "203.0.113.7:4711" or "[2001:db8::1]:4711".
  const bracketed = address.match(/^\[([^\]]+)\](?::\d+)?$/)
  if (bracketed) address = bracketed[1]!
  else if (/^\d{1,3}(?:\.\d{1,3}){3}:\d+$/.test(address)) address = address.slice(0, address.lastIndexOf(':'))
  if (address.startsWith('::ffff:') && isIP(address.slice(7)) === 4) address = address.slice(7)
  return isIP(address) ? address : null
}

export type RequestIp = { requestIP?(request: Request): { address: string } | null } | null

/**
 * The client's address. X-Forwarded-For is believed only behind `trustProxyHops` proxies, and
 * then only the entry the farthest trusted proxy wrote (see forwardedByProxy). Without a socket
 * (app.handle in tests) and no trusted header, all requests are one client, 'unknown'.
 */
export function clientIp(request: Request, server: RequestIp, trustProxyHops: number): string {
  const forwarded = normalizeIp(forwardedByProxy(request, 'x-forwarded-for', trustProxyHops))
  if (forwarded) return forwarded
  let socket: string | undefined
  try {
    socket = server?.requestIP?.(request)?.address
  } catch {
    // A request the server did not receive itself (app.handle on a listening app) has no socket.
  }
  return normalizeIp(socket) ?? 'unknown'
}

/**
 * The user whose budget a request spends: the owner of the first credential (bearer header,
 * ?token= on the WebSocket upgrade, the web UI's session cookies) that belongs to an OPEN session,
 * as the auth service decides. Any other token names nobody, or anyone holding a forged, logged-out
 * or used-up token could spend someone else's budget; the request then counts per IP.
 */
async function verifiedUserId(deps: Pick<AppDeps, 'store' | 'tokens' | 'config'>, request: Request, url: URL): Promise<string | null> {
  // Cookies are not parsed yet this early (onRequest); Bun's own parser reads them.
  const cookies = new Bun.CookieMap(request.headers.get('cookie') ?? '')
  const candidates: Array<[string | null | undefined, TokenKind]> = [
    [bearerToken(request.headers.get('authorization')), 'access'],
    [url.pathname === '/ws' ? url.searchParams.get('token') : undefined, 'access'],
    [cookies.get(ACCESS_COOKIE), 'access'],
    [cookies.get(REFRESH_COOKIE), 'refresh'],
  ]
  for (const [token, kind] of candidates) {
    const userId = token ? await openSessionUserId(deps, token, kind) : null
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

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000))

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
      const retryAfter = seconds(verdict.resetMs)
      set.headers['retry-after'] = String(retryAfter)
      // Thrown, not returned: onError renders it in the error shape, with the headers set above.
      throw new TooManyRequests(`Too many requests: try again in ${retryAfter} s`)
    }
  })
}

/** A connection's frame window, kept on its own record: when the window began, and the frames counted in it. */
export type FrameWindow = { frameWindowStart: number; framesInWindow: number }

/** A frame refused: the error frame to answer it with, and whether to close the socket (1008). */
export type FrameRefusal = { code: 'rate_limited'; message: string; close: boolean }

const FRAME_WINDOW_MS = 60_000

/**
 * The per-connection frame limit for the WebSocket gateway, a fixed window like the HTTP ones (it
 * starts with the connection's first frame). A frame over the limit is answered with a
 * rate_limited error frame and not processed; the FRAME_REFUSALS_BEFORE_CLOSE-th refused frame
 * within one window closes the socket with 1008 (policy violation).
 *
 * A connection lives in one process, so its count is never shared: two numbers on the
 * connection's record, rather than a limiter key and closures per socket.
 */
export function createFrameLimiter(deps: { config: Pick<Config, 'wsFrameLimitPerMinute'> }, now: () => number = Date.now) {
  const perMinute = deps.config.wsFrameLimitPerMinute
  return {
    /** Counts one frame of a connection (refused ones too); null when it may be processed. */
    count(window: FrameWindow): FrameRefusal | null {
      if (perMinute <= 0) return null
      const at = now()
      if (window.framesInWindow === 0 || at - window.frameWindowStart >= FRAME_WINDOW_MS) {
        window.frameWindowStart = at
        window.framesInWindow = 0
      }
      const counted = ++window.framesInWindow
      if (counted <= perMinute) return null
      const retryAfter = seconds(window.frameWindowStart + FRAME_WINDOW_MS - at)
      return {
        code: 'rate_limited',
        message: `Too many frames: at most ${perMinute} a minute; try again in ${retryAfter} s`,
        close: counted - perMinute >= FRAME_REFUSALS_BEFORE_CLOSE,
      }
    },
  }
}

/** A connection's control-frame window, kept on its record like its frame window. */
export type PingWindow = { pingWindowStart: number; pingsInWindow: number }

/**
 * Protocol-level ping and pong frames, per connection, in a fixed window of a minute. They bypass
 * the frame limit (Bun answers a ping with a pong itself, before any handler) and cost a call into
 * JavaScript each, so they have a limit of their own, on whatever WS_FRAME_LIMIT_PER_MINUTE says:
 * that one is sized for chat traffic and may be off, while a client pings only to keep its
 * connection alive, a few times a minute at most. An answered ping cannot be refused, so the first
 * one over the limit closes the socket (1008).
 */
export function createPingLimiter(deps: { config: Pick<Config, 'wsPingLimitPerMinute'> }, now: () => number = Date.now) {
  const perMinute = deps.config.wsPingLimitPerMinute
  return {
    perMinute,
    /** Counts one ping or pong; true once, for the first one over the limit in its window. */
    count(window: PingWindow): boolean {
      const at = now()
      if (window.pingsInWindow === 0 || at - window.pingWindowStart >= FRAME_WINDOW_MS) {
        window.pingWindowStart = at
        window.pingsInWindow = 0
      }
      return ++window.pingsInWindow === perMinute + 1
    },
  }
}
