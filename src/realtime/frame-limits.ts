import type { Config } from '../config'
import { retrySeconds } from '../shared/time'

/** The 10th frame refused within one window closes the socket (1008): it is not slowing down. */
export const FRAME_REFUSALS_BEFORE_CLOSE = 10

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
      const retryAfter = retrySeconds(window.frameWindowStart + FRAME_WINDOW_MS - at)
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
