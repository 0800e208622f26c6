import { Elysia } from 'elysia'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { QueryOperation } from '../db/client'
import type { AppDeps } from '../deps'
import { PUBLIC } from '../shared/http'
import { UNMATCHED, type FinishedRequest } from './requests'

const MESSAGE_RATE_WINDOW_SECONDS = 60

const HTTP_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

/**
 * Events per second averaged over the last `seconds` whole seconds (the current one included),
 * in one counter per second of a ring: adding and reading cost the same however busy it gets.
 */
export function rateWindow(seconds: number, now: () => number = Date.now) {
  const counts = new Float64Array(seconds)
  const stamps = new Float64Array(seconds).fill(-Infinity) // which second each slot counts
  return {
    add(): void {
      const second = Math.floor(now() / 1000)
      const slot = second % seconds
      if (stamps[slot] !== second) {
        stamps[slot] = second
        counts[slot] = 0
      }
      counts[slot]! += 1
    },
    perSecond(): number {
      const second = Math.floor(now() / 1000)
      let total = 0
      for (let slot = 0; slot < seconds; slot++) if (second - stamps[slot]! < seconds) total += counts[slot]!
      return total / seconds
    },
  }
}

/**
 * One registry per app (tests run many apps in one process), never prom-client's global one.
 * prom-client's collectDefaultMetrics is not used: under Bun some of its series are meaningless
 * (process_heap_bytes, event loop lag) and its nodejs_*_total gauges fail `promtool check metrics`.
 * The process's CPU and memory are written here instead, read at each scrape.
 */
export function createMetrics(options: { now?: () => number } = {}) {
  const registry = new Registry()
  const registers = [registry]

  // The user guide's four series.
  const connectionsTotal = new Counter({ name: 'pneumatic_websocket_connections_total', help: 'Total number of WebSocket connections established', registers })
  const connectionsActive = new Gauge({ name: 'pneumatic_websocket_connections_active', help: 'Current number of open WebSocket connections', registers })
  const busPublishFailures = new Counter({
    name: 'pneumatic_bus_publish_failures_total',
    help: 'Events this node could not hand to the Redis bus (it was down): other nodes did not hear of them live',
    registers,
  })
  const messagesSent = new Counter({ name: 'pneumatic_messages_sent_total', help: 'Total number of messages stored (a retry of a stored message is not counted)', registers })
  const messageRate = rateWindow(MESSAGE_RATE_WINDOW_SECONDS, options.now)
  new Gauge({
    name: 'pneumatic_messages_per_second',
    help: `Messages stored per second, averaged over the last ${MESSAGE_RATE_WINDOW_SECONDS} seconds`,
    registers,
    collect() {
      this.set(messageRate.perSecond())
    },
  })

  const httpDuration = new Histogram({
    name: 'pneumatic_http_request_duration_seconds',
    help: `HTTP request duration until the response is ready, by method, route template ("${UNMATCHED}" when no route took the request) and status`,
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  })

  const framesReceived = new Counter({ name: 'pneumatic_websocket_frames_received_total', help: 'WebSocket frames received from clients (refused ones included)', registers })
  const wsErrors = new Counter({ name: 'pneumatic_websocket_errors_total', help: 'Error frames sent to WebSocket clients, by error code', labelNames: ['code'] as const, registers })
  const sendsDropped = new Counter({
    name: 'pneumatic_websocket_sends_dropped_total',
    help: 'WebSocket frames Bun dropped instead of sending (send returned 0: over the backpressure limit, or closing)',
    registers,
  })
  const backpressureCloses = new Counter({
    name: 'pneumatic_websocket_backpressure_closes_total',
    help: 'WebSocket connections disconnected (1006) for what was buffered for them: over the per-socket limit, the slowest when all together were over the budget, or after a dropped send',
    registers,
  })

  const queryDuration = new Histogram({
    name: 'pneumatic_db_query_duration_seconds',
    help: 'Duration of each SQL statement run, by operation',
    labelNames: ['operation'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers,
  })
  // Children made once: observing through labels() on every statement would hash the labels each time.
  const byOperation: Record<QueryOperation, { observe(seconds: number): void }> = {
    select: queryDuration.labels('select'),
    insert: queryDuration.labels('insert'),
    update: queryDuration.labels('update'),
    delete: queryDuration.labels('delete'),
    other: queryDuration.labels('other'),
  }
  const transactionDuration = new Histogram({
    name: 'pneumatic_db_transaction_duration_seconds',
    help: 'Duration of each whole transaction, its statements and COMMIT included',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers,
  })

  processMetrics(registers)

  return {
    registry,
    busPublishFailed(): void {
      busPublishFailures.inc()
    },
    messageStored(): void {
      messagesSent.inc()
      messageRate.add()
    },
    /** For observeRequests: one observation per request, labelled with its route template. */
    httpRequest({ request, route, status, seconds }: FinishedRequest): void {
      httpDuration.observe({ method: HTTP_METHODS.has(request.method) ? request.method : 'other', route, status }, seconds)
    },
    websocketOpened(): void {
      connectionsTotal.inc()
      connectionsActive.inc()
    },
    /** A send Bun dropped (send returned 0): the gateway sends every frame through one function that checks. */
    websocketSendDropped(): void {
      sendsDropped.inc()
    },
    /** `backpressured`: whether the gateway disconnected it for what was buffered for it, or a send to it was dropped. */
    websocketClosed(code: number, backpressured: boolean): void {
      connectionsActive.dec()
      // Both end the connection abnormally: the gateway terminates a slow reader, and Bun closes a
      // socket over its own limit with 1006, dropping the send that crossed it.
      if (code === 1006 && backpressured) backpressureCloses.inc()
    },
    frameReceived(): void {
      framesReceived.inc()
    },
    errorFrameSent(code: string): void {
      wsErrors.inc({ code })
    },
    queries: {
      statement: (operation: QueryOperation, seconds: number) => byOperation[operation].observe(seconds),
      transaction: (seconds: number) => transactionDuration.observe(seconds),
    },
  }
}

export type Metrics = ReturnType<typeof createMetrics>

/** The process's own CPU and memory, read when scraped. */
function processMetrics(registers: Registry[]): void {
  const cpuSeconds = (pick: (usage: NodeJS.CpuUsage) => number) => {
    let counted = 0
    return function (this: Counter) {
      const total = pick(process.cpuUsage()) / 1e6
      if (total > counted) this.inc(total - counted)
      counted = total
    }
  }
  new Counter({ name: 'process_cpu_user_seconds_total', help: 'User CPU time spent in seconds', registers, collect: cpuSeconds((u) => u.user) })
  new Counter({ name: 'process_cpu_system_seconds_total', help: 'System CPU time spent in seconds', registers, collect: cpuSeconds((u) => u.system) })
  new Counter({ name: 'process_cpu_seconds_total', help: 'Total user and system CPU time spent in seconds', registers, collect: cpuSeconds((u) => u.user + u.system) })
  const startTime = new Gauge({ name: 'process_start_time_seconds', help: 'Start time of the process since unix epoch in seconds', registers })
  startTime.set(Math.round(Date.now() / 1000 - process.uptime()))
  new Gauge({
    name: 'process_resident_memory_bytes',
    help: 'Resident memory size in bytes',
    registers,
    collect() {
      this.set(process.memoryUsage.rss())
    },
  })
  new Gauge({
    name: 'process_heap_size_bytes',
    help: 'JavaScript heap size in bytes (heapTotal as Bun reports it)',
    registers,
    collect() {
      this.set(process.memoryUsage().heapTotal)
    },
  })
  new Gauge({
    name: 'process_heap_used_bytes',
    help: 'JavaScript heap in use in bytes (heapUsed as Bun reports it; it can exceed heapTotal)',
    registers,
    collect() {
      this.set(process.memoryUsage().heapUsed)
    },
  })
}

/**
 * GET /metrics, and the wiring of the message and database metrics to this app's bus and
 * connection. Request durations come from observeRequests (see app.ts).
 */
export function metricsPlugin(deps: Pick<AppDeps, 'metrics' | 'bus' | 'store'>) {
  const { metrics } = deps
  // A message's change is published once per stored message, whichever way it was sent; each
  // node counts what it stored, so a sum over the nodes is right.
  const unsubscribe = deps.bus.subscribe((event, origin) => {
    if (event.type === 'conversation.changed' && event.change.type === 'message' && origin === 'here') metrics.messageStored()
  })
  deps.store.observe(metrics.queries)
  return new Elysia({ detail: { tags: ['observability'] } })
    .get(
      '/metrics',
      async ({ set }) => {
        set.headers['content-type'] = metrics.registry.contentType
        return metrics.registry.metrics()
      },
      { detail: { summary: 'Prometheus metrics (text exposition format)', ...PUBLIC } },
    )
    .onStop(() => unsubscribe())
}
