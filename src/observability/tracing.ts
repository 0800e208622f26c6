import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Span, type TextMapGetter } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { BatchSpanProcessor, SimpleSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace'
import { Elysia } from 'elysia'
import type { Config } from '../config'
import type { QueryObserver } from '../db/client'
import type { FinishedRequest } from './requests'

/**
 * Tracing on the OpenTelemetry SDK directly, rather than through @elysiajs/opentelemetry: that
 * plugin starts a whole NodeSDK (gRPC, metrics and log exporters we do not use), reads OTEL_*
 * itself, opens a span per lifecycle hook, and reaches into the API's private context state.
 *
 * Until startTracing() registers a provider, every span below is a no-op costing next to nothing.
 * Looked up on each use: a tracer obtained once would keep the first provider's delegate forever.
 */
export const tracer = () => trace.getTracer('pneumatic')

/** Spans as JSON lines on stdout, for OTEL_TRACES_EXPORTER=console (the SDK's own prints objects). */
export class JsonLinesSpanExporter implements SpanExporter {
  constructor(private readonly write: (line: string) => void = (line) => process.stdout.write(line)) {}
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    for (const span of spans) {
      const { traceId, spanId } = span.spanContext()
      this.write(
        JSON.stringify({
          kind: 'span',
          name: span.name,
          trace_id: traceId,
          span_id: spanId,
          parent_span_id: span.parentSpanContext?.spanId,
          start: new Date(span.startTime[0] * 1000 + span.startTime[1] / 1e6).toISOString(),
          duration_ms: span.duration[0] * 1000 + span.duration[1] / 1e6,
          status: SpanStatusCode[span.status.code],
          attributes: span.attributes,
        }) + '\n',
      )
    }
    done({ code: ExportResultCode.SUCCESS })
  }
  shutdown(): Promise<void> {
    return Promise.resolve()
  }
}

export type Tracing = { shutdown(): Promise<void> }

/** Whether startTracing has registered a provider (and it is not shut down). */
let tracingStarted = false

/**
 * Registers the process's tracer provider from OTEL_TRACES_EXPORTER: none (the default), console,
 * or otlp (HTTP to OTEL_EXPORTER_OTLP_ENDPOINT). `exporter` replaces that choice (tests).
 */
export function startTracing(config: Config['tracing'], exporter?: SpanExporter): Tracing | null {
  if (!exporter && config.exporter === 'none') return null
  const processor = exporter
    ? new SimpleSpanProcessor({ exporter })
    : config.exporter === 'console'
      ? new SimpleSpanProcessor({ exporter: new JsonLinesSpanExporter() })
      : new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: new URL('/v1/traces', config.otlpEndpoint).toString() }) })
  const provider = new TracerProvider({ resource: resourceFromAttributes({ 'service.name': config.serviceName }), spanProcessors: [processor] })
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  propagation.setGlobalPropagator(new W3CTraceContextPropagator())
  trace.setGlobalTracerProvider(provider)
  tracingStarted = true
  return {
    async shutdown() {
      tracingStarted = false
      await provider.shutdown()
      trace.disable()
      propagation.disable()
      context.disable()
    },
  }
}

/** Runs `fn` inside a child span of the active one; ends it however `fn` ends. */
export function inSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => T): T {
  return tracer().startActiveSpan(name, { attributes }, (span) => {
    const fail = (error: unknown) => {
      span.recordException(error as Error)
      span.setStatus({ code: SpanStatusCode.ERROR })
    }
    try {
      const result = fn(span)
      if (result instanceof Promise) {
        return result.then(
          (value) => (span.end(), value),
          (error) => {
            fail(error)
            span.end()
            throw error
          },
        ) as T
      }
      span.end()
      return result
    } catch (error) {
      fail(error)
      span.end()
      throw error
    }
  })
}

/** A finished child span of the active one, from its measured duration (nothing when untraced). */
function recordChild(name: string, seconds: number, attributes: Attributes): void {
  if (!trace.getActiveSpan()?.isRecording()) return
  const end = performance.timeOrigin + performance.now()
  tracer()
    .startSpan(name, { startTime: end - seconds * 1000, attributes })
    .end(end)
}

/** Database work as child spans of the request or frame that caused it (see observeQueries). */
export function queryTracing(system: 'sqlite' | 'postgresql'): QueryObserver {
  return {
    statement: (operation, seconds) => recordChild(`db.${operation}`, seconds, { 'db.system.name': system, 'db.operation.name': operation }),
    transaction: (seconds) => recordChild('db.transaction', seconds, { 'db.system.name': system }),
  }
}

/** The trace id of the active span, for log lines; undefined when nothing is traced. */
export function activeTraceId(): string | undefined {
  const span = trace.getActiveSpan()
  return span?.isRecording() ? span.spanContext().traceId : undefined
}

const requestSpans = new WeakMap<Request, Span>()

/** Reads propagation headers (traceparent, tracestate) straight from the request, copying nothing. */
const HEADERS: TextMapGetter<Headers> = {
  get: (headers, key) => headers.get(key) ?? undefined,
  keys: (headers) => [...headers.keys()],
}

/** The server span of a request (set by the tracing plugin), if it is traced. */
export const requestSpan = (request: Request): Span | undefined => requestSpans.get(request)

/**
 * One SERVER span per HTTP request, continuing an incoming `traceparent`, active while the request
 * is handled so database and fan-out spans nest under it. Use it after observeRequests, so that
 * its wrapper is the outer one (Elysia's last wrapper is outermost) and observeRequests' callbacks
 * run inside the span; endRequestSpan, one of those callbacks, names and ends it.
 */
export const tracingPlugin = () =>
  new Elysia().wrap((handle, request) => {
    // Nothing to trace until startTracing: not even a no-op span (a tracer, a context) per request.
    if (!tracingStarted) return handle
    const parent = propagation.extract(ROOT_CONTEXT, request.headers, HEADERS)
    const span = tracer().startSpan(request.method, { kind: SpanKind.SERVER, attributes: { 'http.request.method': request.method } }, parent)
    if (!span.isRecording()) return handle
    span.setAttribute('url.path', new URL(request.url).pathname)
    requestSpans.set(request, span)
    const active = trace.setSpan(parent, span)
    return (...args: unknown[]) => context.with(active, () => handle(...args))
  })

/** Names a request's span after its route template, records its status and ends it. */
export function endRequestSpan({ request, route, status }: FinishedRequest): void {
  const span = requestSpans.get(request)
  if (!span) return
  span.updateName(`${request.method} ${route}`)
  span.setAttributes({ 'http.route': route, 'http.response.status_code': status })
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
  span.end()
}
