import { Elysia } from 'elysia'
import { newId } from '../shared/ids'
import { lineWriter, type Logger } from './logger'
import type { FinishedRequest } from './requests'
import { requestSpan } from './tracing'

const requestIds = new WeakMap<Request, string>()

// An incoming X-Request-Id (from a proxy) is kept when it is a sane token; otherwise we make one.
const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * One log line per HTTP request: method, route (the template, never the raw path with its ids or
 * query), status, duration_ms, request_id, user_id and trace_id. The request id is echoed in
 * X-Request-Id so a client can quote it. The plugin gives each request its id; `line` is the
 * callback observeRequests calls once the response is ready.
 */
export function requestLog(parent: Logger) {
  // These lines hold only the fields below, none of them a secret.
  const write = lineWriter(parent, 'request')
  return {
    plugin: new Elysia().onRequest(({ request, set }) => {
      const incoming = request.headers.get('x-request-id')
      const id = incoming && SAFE_ID.test(incoming) ? incoming : newId()
      requestIds.set(request, id)
      set.headers['x-request-id'] = id
    }),
    line({ request, route, status, seconds, userId }: FinishedRequest): void {
      write(status >= 500 ? 'error' : 'info', {
        method: request.method,
        route,
        status,
        duration_ms: Math.round(seconds * 100_000) / 100,
        request_id: requestIds.get(request),
        user_id: userId,
        trace_id: requestSpan(request)?.spanContext().traceId,
      })
    },
  }
}
