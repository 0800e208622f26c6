import Redis from 'ioredis'
import { ConfigError, maskedUrl } from '../config'
import type { Logger } from '../observability/logger'
import type { DomainEvent } from '../shared/events'
import type { Bus } from './bus'

/** The one channel every node publishes its events on and subscribes to. */
export const EVENTS_CHANNEL = 'pneumatic:events'

/** How long start-up waits for Redis before it refuses to start. */
const CONNECT_TIMEOUT_MS = 5000


/**
 * What goes over Redis: an event, and which process published it; or that process's word that
 * events of its could not be published (`lost`), sent once it can publish again.
 */
type Envelope = { origin: string; event: DomainEvent } | { origin: string; lost: true }

export type RedisBus = Bus & {
  /**
   * Calls `listener` each time the subscriber is subscribed again after its connection broke
   * (Redis restarted, the connection was killed or timed out), and each time another node says it
   * could not publish some of its events: events of other nodes may never arrive, and whatever
   * must not miss them re-reads the database here.
   */
  onInterruption(listener: () => void): () => void
  /**
   * The connection that publishes, for other shared state in the same Redis (rate limits: see
   * limits/counters.ts). It fails at once while Redis is down, and never queues.
   */
  readonly commands: Redis
  /** Events this process failed to hand to Redis (it was down): other nodes never saw them. */
  readonly publishFailures: number
  close(): Promise<void>
}

export type RedisBusOptions = {
  /** A listener threw (the event is committed: the publisher must not fail because of it). */
  onError: (error: unknown) => void
  logger?: Pick<Logger, 'info' | 'warn' | 'error'>
  /** An event could not be handed to Redis (metrics count these). */
  onPublishFailure?: () => void
}

/**
 * The bus across processes, over Redis pub/sub: every event goes to one channel as JSON, tagged
 * with this process's origin id. Listeners in this process get its own events at once, from
 * publish(), as on the local bus, and the copy that comes back from Redis is skipped: delivery in
 * the process that committed needs neither a round trip nor Redis being up, and nothing arrives
 * twice. Events of other processes arrive from the subscriber connection (a connection in
 * subscribe mode can do nothing else, so publishing has its own).
 *
 * Pub/sub is at-most-once: an event published while a node's subscriber is disconnected is lost
 * to that node, hence onInterruption. Publishing while Redis is down fails at once (no offline
 * queue growing for as long as the outage lasts), is logged and counted, and never throws; once
 * this process publishes again, it tells the others that events of its were lost, and their
 * onInterruption listeners run. That covers what their own reconnections do not: a publishing
 * connection that broke alone, or came back after their subscribers had (after a Redis restart,
 * each connection reconnects on its own schedule).
 *
 * Resolves once both connections are up and subscribed; a Redis that cannot be reached within a
 * few seconds is a ConfigError naming REDIS_URL, so a node does not start deaf to the others.
 */
export async function createRedisBus(url: string, options: RedisBusOptions): Promise<RedisBus> {
  const { onError, logger } = options
  const origin = crypto.randomUUID()
  const listeners = new Set<Parameters<Bus['subscribe']>[0]>()
  const interruptionListeners = new Set<() => void>()
  let publishFailures = 0
  /** An event failed to reach Redis since the other nodes were last told so. */
  let unannounced = false
  let closing = false

  // ioredis reconnects both by itself; resubscribing is done here (autoResubscribe off) so that
  // onInterruption runs only once the server has confirmed the subscription again.
  const connection = { lazyConnect: true, connectTimeout: CONNECT_TIMEOUT_MS, enableOfflineQueue: false, maxRetriesPerRequest: 0 }
  const publisher = new Redis(url, connection)
  const subscriber = new Redis(url, { ...connection, autoResubscribe: false })

  function deliver(event: DomainEvent, from: 'here' | 'elsewhere') {
    for (const listener of listeners) {
      try {
        listener(event, from)
      } catch (error) {
        onError(error)
      }
    }
  }

  function tellInterruption() {
    for (const listener of interruptionListeners) {
      try {
        listener()
      } catch (error) {
        onError(error)
      }
    }
  }

  subscriber.on('message', (_channel: string, text: string) => {
    let envelope: Envelope
    try {
      envelope = JSON.parse(text)
    } catch (error) {
      logger?.error({ err: error }, 'redis bus: a message that is not JSON was ignored')
      return
    }
    if (envelope.origin === origin) return
    if ('lost' in envelope) {
      logger?.info({ from: envelope.origin }, 'redis bus: another node could not publish some events: reading what they may have been')
      tellInterruption()
      return
    }
    deliver(envelope.event, 'elsewhere')
  })

  /** Tells the other nodes, once, that events of this process were lost; told again if that fails too. */
  function announceLosses() {
    if (!unannounced || closing) return
    unannounced = false
    const envelope: Envelope = { origin, lost: true }
    publisher.publish(EVENTS_CHANNEL, JSON.stringify(envelope)).catch(() => {
      unannounced = true
    })
  }

  // Connection trouble is logged once per outage, not once per reconnection attempt.
  const up = { publisher: false, subscriber: false }
  // ioredis rejects connect() with "Connection is closed"; the error event before it says why.
  let lastError: Error | null = null
  for (const [name, client] of [
    ['publisher', publisher],
    ['subscriber', subscriber],
  ] as const) {
    client.on('error', (error: Error) => {
      lastError = error
      if (up[name] && !closing) logger?.warn({ err: error, connection: name }, 'redis bus: connection error')
    })
    client.on('close', () => {
      if (up[name] && !closing) logger?.warn({ connection: name }, 'redis bus: disconnected, reconnecting')
      up[name] = false
    })
  }

  let interrupted = false
  subscriber.on('close', () => {
    if (!closing) interrupted = true
  })
  subscriber.on('ready', () => {
    up.subscriber = true
    if (!interrupted) return
    subscriber.subscribe(EVENTS_CHANNEL).then(
      () => {
        // Still true unless another 'ready' got here first.
        if (!interrupted) return
        interrupted = false
        logger?.info({ channel: EVENTS_CHANNEL }, 'redis bus: subscribed again after an interruption')
        tellInterruption()
      },
      // The connection broke again before the server answered: the next 'ready' tries again.
      () => {},
    )
  })
  publisher.on('ready', () => {
    up.publisher = true
    announceLosses()
  })

  try {
    await withTimeout(Promise.all([publisher.connect(), subscriber.connect()]), CONNECT_TIMEOUT_MS)
    await subscriber.subscribe(EVENTS_CHANNEL)
  } catch (error) {
    closing = true
    publisher.disconnect()
    subscriber.disconnect()
    const reason = (lastError as Error | null)?.message ?? (error instanceof Error ? error.message : String(error))
    throw new ConfigError('REDIS_URL', `cannot be reached at ${maskedUrl(url)}: ${reason}`)
  }

  return {
    publish(event) {
      deliver(event, 'here')
      const envelope: Envelope = { origin, event }
      const failed = (error: unknown) => {
        publishFailures++
        unannounced = true
        options.onPublishFailure?.()
        logger?.error({ err: error, event: event.type }, 'redis bus: an event could not be published; other nodes are told to read it once Redis takes a publish again')
      }
      try {
        publisher.publish(EVENTS_CHANNEL, JSON.stringify(envelope)).then(announceLosses, failed)
      } catch (error) {
        failed(error)
      }
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    onInterruption(listener) {
      interruptionListeners.add(listener)
      return () => interruptionListeners.delete(listener)
    },
    commands: publisher,
    get publishFailures() {
      return publishFailures
    },
    async close() {
      if (closing) return
      closing = true
      // QUIT lets PUBLISH commands already written reach Redis; a connection that is down just ends.
      await Promise.all([publisher, subscriber].map((client) => (client.status === 'ready' ? client.quit().catch(() => client.disconnect()) : client.disconnect())))
    },
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: Timer | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}
