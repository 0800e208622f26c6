import { Elysia } from 'elysia'
import { asksForWebSocket } from '../shared/http'

/** The route label of a request no route took: a 404, or one refused before routing (413, 429). */
export const UNMATCHED = 'unmatched'

/** A request whose response is ready, as the metrics and the request log see it. */
export type FinishedRequest = {
  request: Request
  /** The route template (never the raw path with its ids), or UNMATCHED. */
  route: string
  /** 101 for a WebSocket upgrade; 500 if the handler threw past Elysia's own error handling. */
  status: number
  /** From the request reaching the app to its response being ready. */
  seconds: number
  /** The user the request was authenticated as, if it was (see actingUser). */
  userId: string | undefined
}

type Facts = { route: string; userId: string | undefined }
const facts = new WeakMap<Request, Facts>()

/** Names the user a request acts for: called wherever a request is authenticated. */
export function actingUser(request: Request, userId: string): void {
  const known = facts.get(request)
  if (known) known.userId = userId
}

/**
 * One wrapper around every request that hands each `finished` callback what was learned about it,
 * once its response is ready: route, status, duration, user. A wrapper rather than an
 * onAfterResponse hook: Elysia runs those in a setImmediate that keeps the whole request context
 * alive into the next turn, so every request context, and every WebSocket upgrade's, outlived
 * the young generation, and was most of an idle socket's memory (bench/). Requests answered
 * before routing (413, 429) are seen too. Use it before the app's own onError: a request's route
 * is read in an error hook as well (a body that fails to parse never reaches onTransform).
 */
export function observeRequests(...finished: Array<(request: FinishedRequest) => void>) {
  const observe = (handle: (...args: unknown[]) => unknown, request: Request) =>
    async function observed(...args: unknown[]) {
      const start = performance.now()
      const known: Facts = { route: UNMATCHED, userId: undefined }
      facts.set(request, known)
      let status = 500
      try {
        const response = await handle(...args)
        status = response instanceof Response ? response.status : 200
        return response
      } finally {
        // Bun ignores what is returned once a socket is upgraded; Elysia returns a 200 there.
        if (status === 200 && known.route !== UNMATCHED && asksForWebSocket(request)) status = 101
        const done: FinishedRequest = { request, route: known.route, status, seconds: (performance.now() - start) / 1000, userId: known.userId }
        for (const callback of finished) callback(done)
      }
    }
  return new Elysia()
    .wrap(observe)
    .onTransform({ as: 'global' }, ({ request, route }) => {
      const known = facts.get(request)
      if (known) known.route = route
    })
    .onError({ as: 'global' }, ({ request, route }) => {
      const known = facts.get(request)
      if (known && route) known.route = route
    })
}
