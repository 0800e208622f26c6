import type { Server } from 'bun'
import type { AppDeps } from '../deps'
import { BUN_BACKPRESSURE_LIMIT, PER_SOCKET_BYTES, slowestOverBudget, SWEEP_EVERY, type Buffered } from './buffers'
import type { Connection } from './connection'

export type Registry = ReturnType<typeof createRegistry>

/**
 * This node's open sockets, by user, and every frame that goes out to them: one at a time
 * (send()) or to a topic's subscribers (publish()). What Bun buffers for slow readers is watched
 * here, and the slowest are disconnected before buffers outgrow their budget (see buffers.ts).
 */
export function createRegistry(deps: Pick<AppDeps, 'config' | 'logger' | 'metrics'>) {
  const socketsByUser = new Map<string, Set<Connection>>()
  /** Told when a user's first socket here is registered (true) and when their last one goes (false): presence.ts. */
  const watchers = new Set<(userId: string, here: boolean) => void>()
  let htmlSockets = 0
  let server: Server<unknown> | null = null
  /** Characters sent to backpressured sockets since buffers were last swept (see buffers.ts). */
  let slowCharacters = 0

  /**
   * Every frame to one socket goes out here. Bun drops a send (send returns 0) to a socket over
   * its backpressure limit or closing; that is counted, and remembered to name the close after it.
   * A send Bun had to buffer (-1) counts towards the next sweep of buffers.
   */
  function send(connection: Connection, data: string): void {
    const status = connection.ws.send(data)
    if (status > 0) return
    if (status === -1) {
      sentSlowly(data.length)
      return
    }
    connection.backpressured = true
    deps.metrics.websocketSendDropped()
    // Over Bun's limit (the sweeps missed it): disconnect it now, counted. A socket already
    // closing drops every answer still on its way; no sweep for those.
    if (connection.ws.readyState === 1) sweepBuffers()
  }

  /**
   * Every topic publish goes out here. One that Bun had to buffer for someone (-1) counts towards
   * the next sweep; one it dropped for someone (0, with subscribers) means a sweep now.
   */
  function publish(topic: string, data: string): void {
    if (!server) return
    const status = server.publish(topic, data)
    if (status === -1) sentSlowly(data.length * server.subscriberCount(topic))
    else if (status === 0 && server.subscriberCount(topic) > 0) sweepBuffers()
  }

  function sentSlowly(characters: number): void {
    slowCharacters += characters
    if (slowCharacters >= SWEEP_EVERY) sweepBuffers()
  }

  /**
   * Disconnects the readers too slow for what is sent to them: each one with more than
   * PER_SOCKET_BYTES buffered, and the slowest while all of them together hold more than the
   * budget. Terminated rather than closed: a close frame would only queue behind what they do not
   * read, and terminating frees their buffers at once. They reconnect and catch up with after=<seq>.
   * Called in the middle of sends and publishes: a socket it closes is simply gone after it.
   */
  function sweepBuffers(): void {
    slowCharacters = 0
    const buffers: Buffered<Connection>[] = []
    let total = 0
    for (const connection of all()) {
      const bytes = connection.ws.getBufferedAmount()
      if (bytes === 0) continue
      buffers.push({ socket: connection, bytes })
      total += bytes
    }
    const { overSocketLimit, forBudget } = slowestOverBudget(buffers, deps.config.wsSendBufferBudgetBytes)
    if (overSocketLimit.length + forBudget.length === 0) return
    deps.logger.warn(
      {
        over_socket_limit: overSocketLimit.length,
        for_budget: forBudget.length,
        slow_sockets: buffers.length,
        buffered_bytes: total,
        socket_limit_bytes: PER_SOCKET_BYTES,
        budget_bytes: deps.config.wsSendBufferBudgetBytes,
      },
      'websocket readers too slow: disconnecting',
    )
    for (const connection of [...overSocketLimit, ...forBudget]) {
      connection.backpressured = true
      connection.ws.terminate()
    }
  }

  function* all(): Generator<Connection> {
    for (const connections of socketsByUser.values()) yield* connections
  }

  return {
    send,
    publish,
    all,
    /** Called once the server listens: server.publish reaches every subscriber, the sender included. */
    attach(listening: Server<unknown>): void {
      server = listening
    },
    /** Whether sockets here can be reached yet (the server listens). */
    get listening(): boolean {
      return server !== null
    },
    /**
     * Adds a socket to its user's; none when the user has WS_MAX_SOCKETS_PER_USER already: then
     * the number they have, and the socket is not registered. A user's sockets share one User.
     */
    add(connection: Connection): number | null {
      let connections = socketsByUser.get(connection.user.id)
      if (connections && connections.size >= deps.config.wsMaxSocketsPerUser) return connections.size
      const first = !connections
      if (!connections) socketsByUser.set(connection.user.id, (connections = new Set()))
      for (const other of connections) {
        connection.user = other.user
        break
      }
      connections.add(connection)
      if (connection.format === 'html') htmlSockets++
      if (first) for (const watcher of watchers) watcher(connection.user.id, true)
      return null
    },
    /** Removes a socket; false if it was never registered (it was refused). */
    remove(connection: Connection): boolean {
      const connections = socketsByUser.get(connection.user.id)
      if (!connections?.delete(connection)) return false
      if (connection.format === 'html') htmlSockets--
      if (connections.size === 0) {
        socketsByUser.delete(connection.user.id)
        for (const watcher of watchers) watcher(connection.user.id, false)
      }
      return true
    },
    ofUser(userId: string): ReadonlySet<Connection> | undefined {
      return socketsByUser.get(userId)
    },
    users(): IterableIterator<[string, ReadonlySet<Connection>]> {
      return socketsByUser.entries()
    },
    /** Calls `watcher` when a user's first socket here is registered (true) and when their last one goes (false). */
    watch(watcher: (userId: string, here: boolean) => void): () => void {
      watchers.add(watcher)
      return () => watchers.delete(watcher)
    },
    /** Sockets subscribed to a topic here. */
    subscribers(topic: string): number {
      return server?.subscriberCount(topic) ?? 0
    },
    /** Web UI sockets open here. */
    get htmlSockets(): number {
      return htmlSockets
    },
  }
}

/** Bun's per-socket limits, set deliberately rather than left at Bun's 16 MB / 120 s defaults. */
export const websocketOptions = (config: { wsIdleTimeoutSeconds: number }) =>
  ({
    maxPayloadLength: 64 * 1024,
    // A backstop: the registry disconnects a slow reader first, and counts it (see buffers.ts).
    backpressureLimit: BUN_BACKPRESSURE_LIMIT,
    // A reader that stops reading is disconnected, never silently skipped: it reconnects and
    // catches up with ?after=<seq>.
    closeOnBackpressureLimit: true,
    // Bun pings a quiet socket and closes one that answers nothing within the timeout.
    idleTimeout: config.wsIdleTimeoutSeconds,
    sendPings: true,
    perMessageDeflate: false,
  }) as const
