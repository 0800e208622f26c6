import { Elysia, type ValidationError } from 'elysia'
import { authRoutes } from './auth/routes'
import { startPruning } from './conversations/changes'
import { conversationRoutes } from './conversations/routes'
import type { AppDeps } from './deps'
import { docsRoutes } from './docs/routes'
import { messageRoutes } from './messages/routes'
import { healthRoutes } from './observability/health'
import { clientText, redactUrl } from './observability/logger'
import { metricsPlugin } from './observability/metrics'
import { rateLimit } from './limits/http'
import { requestLog } from './observability/request-log'
import { searchRoutes } from './search/routes'
import { observeRequests } from './observability/requests'
import { endRequestSpan, queryTracing, tracingPlugin } from './observability/tracing'
import { storageUnavailable } from './db/storage'
import { createGateway } from './realtime/gateway'
import { websocketOptions } from './realtime/registry'
import { BadRequest, DomainError, errorBody, Invalid, PayloadTooLarge, type FieldIssue } from './shared/errors'
import { fieldName, issueMessage } from './shared/validation'
import { pushToWebUi } from './ui/push'
import { pushSignalsToWebUi } from './ui/signals'
import { uiRoutes } from './ui/routes'
import { BASE_SECURITY_HEADERS } from './ui/security'
import { staticRoutes } from './ui/static'
import { userRoutes } from './users/routes'

/** Request bodies above this are refused with 413; messages are at most 4000 characters. */
export const MAX_BODY_BYTES = 64 * 1024
// Bun's own cap, for bodies that do not declare their length: it answers 413 without reading on.
const HARD_BODY_LIMIT = 1024 * 1024

function validationDetails(error: Pick<ValidationError, "all" | "type">): FieldIssue[] {
  const details: FieldIssue[] = []
  for (const issue of error.all) {
    // Elysia reports a coerced query parameter with an empty path and only its own schema, so
    // query parameter schemas carry their name as `title`.
    const schema = issue.schema as { title?: unknown } | undefined
    const field = issue.path ? fieldName(issue.path) : typeof schema?.title === 'string' ? schema.title : error.type
    if (details.some((d) => d.field === field)) continue
    details.push({ field, message: issueMessage(issue) })
  }
  return details
}

export function createApp(deps: AppDeps) {
  deps.store.observe(queryTracing(deps.store.engine === 'postgres' ? 'postgresql' : 'sqlite'))
  const gateway = createGateway(deps)
  const stopWebUiPushes = pushToWebUi(deps, gateway.ordered, gateway.registry)
  const stopWebUiSignals = pushSignalsToWebUi(deps, gateway.registry)
  let stopPruning: (() => void) | undefined
  const log = requestLog(deps.logger)
  const app = new Elysia({ websocket: websocketOptions(deps.config), serve: { maxRequestBodySize: HARD_BODY_LIMIT } })
    // First, so every request (even one refused early) is timed, logged and traced. Tracing after
    // observeRequests: its wrapper is then the outer one, and the span is active around all of it.
    .use(observeRequests(deps.metrics.httpRequest, log.line, endRequestSpan))
    .use(tracingPlugin())
    .use(log.plugin)
    .use(metricsPlugin(deps))
    .onRequest(({ set }) => {
      Object.assign(set.headers, BASE_SECURITY_HEADERS)
    })
    // Before the size check, so a 413 counts and carries the rate-limit headers too.
    .use(rateLimit(deps))
    .onRequest(({ request }) => {
      // Refuse a declared oversized body before reading it (Bun's own cap answers chunked ones).
      const length = Number(request.headers.get('content-length') ?? 0)
      // Thrown, not returned: onError renders it and the request is still logged and traced.
      if (length > MAX_BODY_BYTES) throw new PayloadTooLarge(`Request body is larger than ${MAX_BODY_BYTES} bytes`)
    })
    .onParse(async ({ request, contentType }) => {
      // The web UI's forms, when htmx sends them as multipart: text fields only.
      if (contentType.startsWith('multipart/form-data')) {
        return Object.fromEntries([...(await request.formData())].filter(([, v]) => typeof v === 'string'))
      }
      // Enforce the cap on what is actually read too: a chunked body declares no length.
      // (JSON routes still declare `parse: 'json'`: that is what OpenAPI lists as their content type.)
      const text = await request.text()
      if (Buffer.byteLength(text) > MAX_BODY_BYTES) throw new PayloadTooLarge(`Request body is larger than ${MAX_BODY_BYTES} bytes`)
      if (contentType === 'application/x-www-form-urlencoded') return Object.fromEntries(new URLSearchParams(text))
      if (!contentType.startsWith('application/json')) return text
      try {
        return JSON.parse(text)
      } catch {
        throw new BadRequest('Request body is not valid JSON', 'invalid_json')
      }
    })
    .onError(({ code, error, set, request }) => {
      // Errors thrown while parsing reach here wrapped in Elysia's ParseError.
      const cause = error instanceof DomainError ? error : (error as { cause?: unknown })?.cause
      // A full disk, a corrupt file...: the request was sound and may be retried, so not a 500.
      const storage = cause instanceof DomainError ? null : storageUnavailable(error)
      if (storage) {
        const url = new URL(request.url)
        deps.logger.warn({ err: error, reason: storage.reason, method: request.method, url: redactUrl(url.pathname + url.search) }, 'storage unavailable')
      }
      const domain = cause instanceof DomainError ? cause : storage
      if (domain) {
        set.status = domain.status
        if (domain.retryAfterSeconds !== undefined) set.headers['retry-after'] = String(domain.retryAfterSeconds)
        return domain.toBody()
      }
      switch (code) {
        case 'PARSE':
          set.status = 400
          return errorBody('invalid_json', 'Request body is not valid JSON')
        case 'VALIDATION':
          set.status = 422
          return new Invalid(validationDetails(error)).toBody()
        case 'NOT_FOUND':
          set.status = 404
          return errorBody('not_found', `No route for ${request.method} ${new URL(request.url).pathname}`)
      }
      const url = new URL(request.url)
      deps.logger.error({ err: error, method: request.method, url: clientText(redactUrl(url.pathname + url.search), 256) }, 'unhandled error')
      set.status = 500
      return errorBody('internal_error', 'Internal server error')
    })
    .use(healthRoutes(deps))
    .use(docsRoutes())
    .use(authRoutes(deps))
    .use(userRoutes(deps))
    .use(conversationRoutes(deps))
    .use(messageRoutes(deps))
    .use(searchRoutes(deps))
    .use(gateway.routes)
    .use(staticRoutes())
    .use(uiRoutes(deps))
    .onStart(({ server }) => {
      if (server) gateway.attach(server)
      stopPruning ??= startPruning(deps)
    })
    .onStop(() => {
      stopWebUiPushes()
      stopWebUiSignals()
      stopPruning?.()
      gateway.close()
    })
  return app
}

export type App = ReturnType<typeof createApp>

/**
 * Shutdown as clients should see it. Bun's stop stops accepting, closes every WebSocket with 1001
 * (Going Away: clients reconnect and catch up) and waits for requests in flight; a request that
 * hangs past `deadlineMs` is cut, so a signal always ends the process in time.
 */
export async function stopGracefully(app: App, deadlineMs = 4000): Promise<void> {
  let timer: Timer | undefined
  const deadline = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), deadlineMs)))
  const drained = await Promise.race([app.stop(false).then(() => 'drained' as const), deadline])
  clearTimeout(timer)
  if (drained === 'late' && app.server) await app.stop(true)
}
