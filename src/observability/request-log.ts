import { Elysia } from 'elysia'
import { newId } from '../shared/ids'
import { unredacted, type Logger } from './logger'
import { requestSpan } from './tracing'

const requests = new WeakMap<Request, { id: string; start: number }>()

// An incoming X-Request-Id (from a proxy) is kept when it is a sane token; otherwise we make one.
const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * One log line per HTTP request: method, route (the template, never the raw path with its ids or
 * query), status, duration_ms, request_id, user_id and trace_id. The request id is echoed in
 * X-Request-Id so a client can quote it.
 */
export const requestLogPlugin = (parent: Logger) => {
  // These lines hold only the fields below, none of them a secret.
  const logger = unredacted(parent)
  return new Elysia()
    .onRequest(({ request, set }) => {
      const incoming = request.headers.get('x-request-id')
      const id = incoming && SAFE_ID.test(incoming) ? incoming : newId()
      requests.set(request, { id, start: performance.now() })
      set.headers['x-request-id'] = id
    })
    .onAfterResponse({ as: 'global' }, (ctx) => {
      const { request, route, set } = ctx
      const started = requests.get(request)
      const status = typeof set.status === 'number' ? set.status : 200
      const user = (ctx as { user?: { id: string } | null; me?: { id: string } | null }).user ?? (ctx as { me?: { id: string } | null }).me
      const span = requestSpan(request)
      const line = {
        method: request.method,
        route: route || 'unmatched',
        status,
        duration_ms: started ? Math.round((performance.now() - started.start) * 100) / 100 : undefined,
        request_id: started?.id,
        user_id: user?.id,
        trace_id: span?.spanContext().traceId,
      }
      if (status >= 500) logger.error(line, 'request')
      else logger.info(line, 'request')
    })
}
