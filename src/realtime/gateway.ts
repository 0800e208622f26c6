import type { Server, ServerWebSocket } from 'bun'
import { Elysia, serializeCookie, type Context, type Cookie } from 'elysia'
import { parseSetCookies } from 'elysia/adapter/utils'
import { decodeJwt } from 'jose'
import { livePush } from '../../views/chat'
import { ACCESS_COOKIE, bearerToken } from '../auth/credentials'
import { authenticate, isSessionOpen, type Authenticated } from '../auth/service'
import { conversationFor } from '../conversations/model'
import * as conversations from '../conversations/service'
import { storageUnavailable } from '../db/storage'
import type { AppDeps } from '../deps'
import type { Message } from '../messages/model'
import * as messages from '../messages/service'
import { clientText, unredacted } from '../observability/logger'
import { createFrameLimiter, createPingLimiter, type FrameWindow, type PingWindow } from '../observability/rate-limit'
import { actingUser } from '../observability/requests'
import { inSpan } from '../observability/tracing'
import { hasAllowedOrigin, isHttps } from '../ui/security'
import { browserSession, REFRESH_COOKIE } from '../ui/session'
import { DomainError, errorBody, Forbidden, Unauthorized } from '../shared/errors'
import type { DomainEvent } from '../shared/events'
import { asksForWebSocket } from '../shared/http'
import { validator } from '../shared/validation'
import type { User } from '../users/model'
import { BUN_BACKPRESSURE_LIMIT, PER_SOCKET_BYTES, slowestOverBudget, SWEEP_EVERY, type Buffered } from './buffers'
import { AuthFrame, errorFrame, frame, JoinFrame } from './frames'
import { createSequencer } from './sequencer'
import { conversationTopic, userHtmlTopic } from './topics'

/** Bun's per-socket limits, set deliberately rather than left at Bun's 16 MB / 120 s defaults. */
export const websocketOptions = (config: { wsIdleTimeoutSeconds: number }) =>
  ({
    maxPayloadLength: 64 * 1024,
    // A backstop: the gateway disconnects a slow reader first, and counts it (see buffers.ts).
    backpressureLimit: BUN_BACKPRESSURE_LIMIT,
    // A reader that stops reading is disconnected, never silently skipped: it reconnects and
    // catches up with ?after=<seq>.
    closeOnBackpressureLimit: true,
    // Bun pings a quiet socket and closes one that answers nothing within the timeout.
    idleTimeout: config.wsIdleTimeoutSeconds,
    sendPings: true,
    perMessageDeflate: false,
  }) as const

type Socket = ServerWebSocket<unknown>

const checkJoin = validator(JoinFrame)
const checkAuth = validator(AuthFrame)

/** Error-frame log lines per connection and minute; the rest are counted in one line. */
export const ERROR_LINES_PER_MINUTE = 10
const MINUTE_MS = 60_000
const EXPIRY_CHECK_MS = 1000

/** When a token verified before stops being valid (ms since the epoch). */
const expiryOf = (token: string): number => (decodeJwt(token).exp ?? 0) * 1000

/** Who opened a socket, until when its credentials hold, and whether they were the web UI's session cookies. */
type Caller = Authenticated & { expiresAt: number; viaCookies: boolean }

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/**
 * The credentials of an upgrade: `?token=`, then `Authorization: Bearer`, then the web UI's
 * session cookie. A cookie is sent by the browser whatever page opened the socket, so a
 * cookie-authenticated upgrade must come from a page of this server (same Origin).
 */
async function upgradeCaller(deps: AppDeps, request: Request, token: string | undefined, cookie: Record<string, Cookie<unknown>>): Promise<Caller> {
  const explicit = token || bearerToken(request.headers.get('authorization'))
  if (explicit) return { ...(await authenticate(deps.store, deps.tokens, explicit)), expiresAt: expiryOf(explicit), viaCookies: false }
  if (cookie[ACCESS_COOKIE]?.value || cookie[REFRESH_COOKIE]?.value) {
    const { allowedOrigins, trustProxyHops } = deps.config
    if (!hasAllowedOrigin(request, allowedOrigins, trustProxyHops)) throw new Forbidden('Cross-origin WebSocket upgrade refused')
    const caller = await browserSession(deps, cookie, isHttps(request, trustProxyHops))
    if (caller) return { ...caller, expiresAt: await browserSocketExpiry(deps, cookie, caller), viaCookies: true }
    throw new Unauthorized('Session expired: sign in again', 'invalid_token')
  }
  throw new Unauthorized('Missing token: use ?token=, an Authorization header or a session cookie', 'missing_token')
}

/**
 * A web UI socket lasts as long as the browser session it was opened with: its holder holds the
 * refresh cookie too, and could renew the access token at will. So it lives until that refresh
 * token expires, unless the session ends first (logout, reuse of a refresh token: those close it
 * at once), rather than dropping every ACCESS_TOKEN_TTL_SECONDS. Without a refresh cookie of the
 * same session, the access token's lifetime.
 */
async function browserSocketExpiry(deps: AppDeps, cookie: Record<string, Cookie<unknown>>, caller: Authenticated): Promise<number> {
  // Read after browserSession: a session renewed during the upgrade has its new tokens here.
  const refresh = cookie[REFRESH_COOKIE]?.value
  if (typeof refresh === 'string' && refresh !== '') {
    try {
      const claims = await deps.tokens.verify(refresh, 'refresh')
      if (claims.userId === caller.user.id && claims.sessionId === caller.sessionId) return expiryOf(refresh)
    } catch (error) {
      if (!(error instanceof DomainError)) throw error
    }
  }
  const access = cookie[ACCESS_COOKIE]?.value
  return typeof access === 'string' && access !== '' ? expiryOf(access) : Date.now()
}

/** JSON frames for API clients; rendered HTML pushes for the web UI (`?format=html`). */
type Format = 'json' | 'html'

/**
 * Each process's WebSocket endpoint. It keeps its own sockets by user, subscribes them to the
 * topics of their conversations, and turns bus events into frames for them.
 */
export function createGateway(deps: AppDeps) {
  // Every socket by user: JSON ones are subscribed to conversations created while they are open
  // (UI ones listen on one topic per user instead), and all close when their session ends.
  const socketsByUser = new Map<string, Set<Connection>>()
  const SETTLED: Promise<unknown> = Promise.resolve()
  let htmlSockets = 0
  let server: Server<unknown> | null = null
  const frameLimiter = createFrameLimiter(deps)
  const pingLimiter = createPingLimiter(deps)
  /** Characters sent to backpressured sockets since buffers were last swept (see buffers.ts). */
  let slowCharacters = 0
  let expiryChecks: Timer | undefined
  // The socket lines below hold only ids, codes and numbers, none of them a secret; redaction's
  // garbage was most of what an upgrade allocated, and so of an idle socket's memory (bench/).
  const log = unredacted(deps.logger)

  /**
   * Everything the gateway keeps for one socket, from its upgrade to its close, as the socket's
   * data (Bun's ws.data). Elysia's Bun handler calls ws.data.open, .message and .close (the
   * gateway tests fail if that ever changes). They are methods, so a socket costs this one small
   * object and no closures; nothing of the upgrade request is kept.
   */
  class Connection implements FrameWindow, PingWindow {
    /** The socket, from open on. */
    ws!: Socket
    openedAt = 0
    /** The answer to the socket's latest frame, while it is still to be sent (see answer()). */
    answering: Promise<void> | undefined = undefined
    /** The check of the socket's latest message, which the next one waits for (see postInOrder()). */
    checking: Promise<unknown> = SETTLED
    /** Whether the gateway disconnected it for what was buffered for it, or Bun dropped a send to it (see send()). */
    backpressured = false
    frameWindowStart = 0
    framesInWindow = 0
    pingWindowStart = 0
    pingsInWindow = 0
    errorLinesWindowStart = 0
    errorLinesInWindow = 0
    constructor(
      /** After open, used only for its id: a user's sockets share the first one's User. */
      public user: User,
      /** The session whose end closes this socket: the one it was opened with, or re-authenticated with. */
      public sessionId: string,
      readonly format: Format,
      /** When its credentials stop being valid (ms since the epoch): then it is closed, unless renewed by an `auth` frame. */
      public expiresAt: number,
      /** Opened with the session cookies, which a reconnect renews: told to reconnect when they expire. */
      readonly viaCookies: boolean,
    ) {}
    open(ws: Socket): void {
      opened(this, ws)
    }
    message(_: Socket, incoming: string | Buffer): void {
      try {
        received(this, incoming)
      } catch (error) {
        deps.logger.error({ err: error, user_id: this.user.id }, 'websocket frame failed')
      }
    }
    /** Protocol pings and pongs: Bun has answered a ping already; they are only counted here. */
    ping(): void {
      if (pingLimiter.count(this)) tooManyPings(this)
    }
    pong(): void {
      if (pingLimiter.count(this)) tooManyPings(this)
    }
    close(_: Socket, code: number): void {
      closed(this, code)
    }
  }

  /** Each member's UI pages get the push rendered for them (a 1-on-1 is named differently per side). */
  async function pushHtml(listening: Server<unknown>, message: Message): Promise<void> {
    const record = await conversations.recordById(deps.store, message.conversation_id)
    if (!record) return
    for (const member of record.members) {
      const topic = userHtmlTopic(member.id)
      if (listening.subscriberCount(topic) > 0) publish(listening, topic, livePush(record, message, member.id))
    }
  }

  /**
   * The UI's pushes go out in the order the messages were stored, though each reads its
   * conversation's members first: one after the other.
   */
  let htmlPushes: Promise<void> = Promise.resolve()
  function pushHtmlInOrder(listening: Server<unknown>, message: Message): void {
    htmlPushes = htmlPushes
      .then(() => pushHtml(listening, message))
      .catch((error) => deps.logger.error({ err: error, conversation_id: message.conversation_id }, 'web UI push failed'))
  }

  function deliver(event: DomainEvent): void {
    if (server) inSpan('fanout', { 'event.type': event.type }, () => deliverTo(event))
  }

  function deliverTo(event: DomainEvent): void {
    switch (event.type) {
      case 'message.created':
        sequencer.accept(event.message)
        return
      case 'conversation.created': {
        const topic = conversationTopic(event.conversation.id)
        sequencer.know(event.conversation.id, event.conversation.lastSeq)
        for (const member of event.conversation.members) {
          const connections = socketsByUser.get(member.id)
          if (!connections) continue
          const data = frame({ type: 'conversation', conversation: conversationFor(event.conversation, member.id) })
          for (const connection of connections) {
            if (connection.format !== 'json') continue
            connection.ws.subscribe(topic)
            send(connection, data)
          }
        }
        return
      }
      case 'session.ended':
        // Logged out: the session's sockets (all the user's, for "everywhere") may not stay open.
        for (const connection of socketsByUser.get(event.userId) ?? []) {
          if (event.sessionId === null || connection.sessionId === event.sessionId) connection.ws.close(1008, 'Session ended')
        }
        return
    }
  }

  /** Messages reach this node's sockets in seq order, each once, whichever node stored them. */
  const sequencer = createSequencer({
    read: (conversationId, after, before, limit) => messages.between(deps.store, conversationId, after, before, limit),
    deliver(message) {
      if (!server) return
      publish(server, conversationTopic(message.conversation_id), frame({ type: 'message', message }))
      if (htmlSockets > 0) pushHtmlInOrder(server, message)
    },
    onError: (error, conversationId) => deps.logger.error({ err: error, conversation_id: conversationId }, 'reading missed messages failed'),
  })

  const unsubscribe = deps.bus.subscribe(deliver)
  const stopHearingInterruptions = deps.bus.onInterruption(() => {
    deps.logger.warn('the bus was interrupted: reading what it may have lost from the database')
    // Only conversations someone here follows: reading every one ever seen would be a burst of reads.
    sequencer.catchUp((id) => (server?.subscriberCount(conversationTopic(id)) ?? 0) > 0 || htmlSockets > 0)
    void recheckSockets()
  })

  /**
   * After a bus interruption, what other nodes announced meanwhile is read again: a socket is
   * subscribed to (and told of) each conversation of its user it does not know yet, and a socket
   * whose session ended is closed.
   */
  async function recheckSockets(): Promise<void> {
    for (const [userId, connections] of socketsByUser) {
      try {
        const positions = await conversations.positionsFor(deps.store, userId)
        for (const connection of connections) {
          if (!(await isSessionOpen(deps.store, userId, connection.sessionId))) {
            connection.ws.close(1008, 'Session ended')
            continue
          }
          if (connection.format !== 'json') continue
          for (const { id } of positions) {
            const topic = conversationTopic(id)
            if (connection.ws.isSubscribed(topic)) continue
            const record = await conversations.recordById(deps.store, id)
            connection.ws.subscribe(topic)
            if (record) send(connection, frame({ type: 'conversation', conversation: conversationFor(record, userId) }))
          }
        }
      } catch (error) {
        deps.logger.error({ err: error, user_id: userId }, 'rechecking sockets after a bus interruption failed')
      }
    }
  }

  /**
   * Every frame to one socket goes out here. Bun drops a send (send returns 0) to a socket over
   * its backpressure limit or closing; that is counted, and remembered to name the close after it.
   * A send Bun had to buffer (-1) counts towards the next sweep of buffers (see buffers.ts).
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
    // Over Bun's limit (the gateway's sweeps missed it): disconnect it now, counted. A socket
    // already closing drops every answer still on its way; no sweep for those.
    if (connection.ws.readyState === 1) sweepBuffers()
  }

  /**
   * Every topic publish goes out here. One that Bun had to buffer for someone (-1) counts towards
   * the next sweep; one it dropped for someone (0, with subscribers) means a sweep now.
   */
  function publish(listening: Server<unknown>, topic: string, data: string): void {
    const status = listening.publish(topic, data)
    if (status === -1) sentSlowly(data.length * listening.subscriberCount(topic))
    else if (status === 0 && listening.subscriberCount(topic) > 0) sweepBuffers()
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
    for (const connections of socketsByUser.values()) {
      for (const connection of connections) {
        const bytes = connection.ws.getBufferedAmount()
        if (bytes === 0) continue
        buffers.push({ socket: connection, bytes })
        total += bytes
      }
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

  /** Every error frame goes out here, so each one is logged the same way. */
  function sendError(connection: Connection, error: Pick<DomainError, 'code' | 'message' | 'details'>, cause?: Record<string, unknown>): void {
    logErrorFrame(connection, error.code, typeof cause?.type === 'string' ? cause.type : undefined)
    deps.metrics.errorFrameSent(error.code)
    send(connection, errorFrame(error, cause))
  }

  /**
   * At most ERROR_LINES_PER_MINUTE lines per connection and minute: with the frame limit off, a
   * client can make an error frame of every frame it sends, and its log lines must not cost more
   * than its frames. The rest are counted, in one line when the minute is over or the socket closes.
   * Through the redacting logger, since frame_type is the client's.
   */
  function logErrorFrame(connection: Connection, code: string, frameType: string | undefined): void {
    const at = Date.now()
    if (at - connection.errorLinesWindowStart >= MINUTE_MS) {
      logUnloggedErrors(connection)
      connection.errorLinesWindowStart = at
      connection.errorLinesInWindow = 0
    }
    if (++connection.errorLinesInWindow > ERROR_LINES_PER_MINUTE) return
    deps.logger.info({ user_id: connection.user.id, code, frame_type: frameType === undefined ? undefined : clientText(frameType) }, 'websocket error frame')
  }

  function logUnloggedErrors(connection: Connection): void {
    const unlogged = connection.errorLinesInWindow - ERROR_LINES_PER_MINUTE
    if (unlogged > 0) log.info({ user_id: connection.user.id, unlogged, since: new Date(connection.errorLinesWindowStart).toISOString() }, 'websocket error frames not logged')
  }

  function tooManyPings(connection: Connection): void {
    sendError(connection, { code: 'rate_limited', message: `Too many pings: at most ${pingLimiter.perMinute} a minute` })
    connection.ws.close(1008, 'Too many pings')
  }

  /**
   * Closes the sockets whose credentials have expired: a token must not outlive its lifetime on a
   * socket. One opened with a token gets 1008: reconnecting with the same token would be refused.
   * One opened with the session cookies gets 1013 (try again later), which the web UI reconnects
   * on: its upgrade renews the cookies if the session is still open (another tab may have renewed
   * it since), and is refused if not.
   */
  function closeExpired(): void {
    const now = Date.now()
    for (const connections of socketsByUser.values()) {
      for (const connection of connections) {
        if (connection.expiresAt > now) continue
        sendError(connection, {
          code: 'token_expired',
          message: 'The token this socket was opened with has expired: send {"type":"auth","token":"<access token>"} before it does, or reconnect with a fresh one',
        })
        connection.ws.close(connection.viaCookies ? 1013 : 1008, 'Token expired')
      }
    }
  }

  type Reply = () => void

  /**
   * Each socket's frames are answered in the order they came. A send is answered only once its
   * batch has committed, so a later frame's answer (a pong, an error) waits behind it, while its
   * work starts at once: a client's pipelined sends still share one batch.
   */
  function answer(connection: Connection, reply: Reply | Promise<Reply>): void {
    const earlier = connection.answering
    if (earlier === undefined && typeof reply === 'function') {
      reply()
      return
    }
    const done = Promise.all([earlier, reply])
      .then(([, send]) => send())
      .catch((error) => deps.logger.error({ err: error }, 'websocket reply failed'))
    connection.answering = done
    void done.then(() => {
      if (connection.answering === done) connection.answering = undefined
    })
  }

  /** One raw frame from a client: parsed here once, answered with an error frame when bad. */
  function replyTo(connection: Connection, incoming: string | Buffer): Reply | Promise<Reply> {
    const refuse = (error: Pick<DomainError, 'code' | 'message' | 'details'>, cause?: Record<string, unknown>) => () => sendError(connection, error, cause)
    if (typeof incoming !== 'string') return refuse({ code: 'invalid_frame', message: 'Binary frames are not supported: send JSON text' })
    let data: unknown
    try {
      data = JSON.parse(incoming)
    } catch {
      return refuse({ code: 'invalid_json', message: 'Frame is not valid JSON' })
    }
    if (!isRecord(data) || typeof data.type !== 'string') {
      return refuse({ code: 'invalid_frame', message: 'A frame must be a JSON object with a string "type"' }, isRecord(data) ? data : undefined)
    }
    const frameData = data
    const user = connection.user
    const failed = (error: unknown): Reply => {
      if (error instanceof DomainError) return refuse(error, frameData)
      const storage = storageUnavailable(error)
      if (storage) {
        deps.logger.warn({ err: error, reason: storage.reason, user_id: user.id, frame_type: clientText(frameData.type as string) }, 'storage unavailable')
        return refuse(storage, frameData)
      }
      deps.logger.error({ err: error, user_id: user.id, frame_type: clientText(frameData.type as string) }, 'websocket frame failed')
      return refuse({ code: 'internal_error', message: 'Internal error' }, frameData)
    }
    try {
      const reply = inSpan('ws.frame', { 'ws.frame.type': String(frameData.type).slice(0, 32), 'enduser.id': user.id }, () => handleFrame(connection, user, frameData))
      return typeof reply === 'function' ? reply : reply.catch(failed)
    } catch (error) {
      return failed(error)
    }
  }

  /**
   * A socket's messages are stored in the order it sent them: each is checked (membership may need
   * a read) after the one before it, and queued for its batch as soon as it is checked.
   */
  function postInOrder(connection: Connection, user: User, data: Record<string, unknown>) {
    const checked = connection.checking.then(() => messages.check(deps, user, data))
    connection.checking = checked.catch(() => undefined)
    return checked.then((job) => messages.write(deps, job))
  }

  /** What to answer a frame with; a send's answer comes once its batch has committed. */
  function handleFrame(connection: Connection, user: User, data: Record<string, unknown>): Reply | Promise<Reply> {
    switch (data.type) {
      case 'message':
        return postInOrder(connection, user, data).then(({ message, created }) => () => {
          // A new message reached this socket through its topic at commit; a retry of a stored
          // one is answered to this socket alone, since the others already have it.
          if (!created) send(connection, frame({ type: 'message', message }))
        })
      case 'join': {
        const { conversation_id } = checkJoin(data)
        return conversations.requireMembership(deps.store, user, conversation_id).then((row) => () => {
          sequencer.know(conversation_id, row.lastSeq)
          connection.ws.subscribe(conversationTopic(conversation_id))
          send(connection, frame({ type: 'joined', conversation_id }))
        })
      }
      case 'ping':
        return () => send(connection, frame({ type: 'pong' }))
      case 'auth':
        return reauthenticate(connection, checkAuth(data).token)
      default:
        throw new DomainError(400, 'unknown_type', `Unknown frame type ${JSON.stringify(data.type)}; expected "message", "join", "ping" or "auth"`)
    }
  }

  /**
   * A fresh access token of the socket's own user: the socket now closes when that one expires,
   * and with that token's session. A bad token is an error frame, and changes nothing.
   */
  async function reauthenticate(connection: Connection, token: string): Promise<Reply> {
    const caller = await authenticate(deps.store, deps.tokens, token)
    if (caller.user.id !== connection.user.id) throw new Forbidden('This token belongs to another user: a socket stays with the user who opened it')
    connection.sessionId = caller.sessionId
    connection.expiresAt = Math.max(connection.expiresAt, expiryOf(token))
    return () => send(connection, frame({ type: 'authenticated' }))
  }

  /**
   * One socket more than a user may have is refused, rather than the oldest closed: a web UI tab
   * closed to make room would reconnect and close the next one, and tabs would take turns for
   * ever. A socket whose client vanished is closed by the idle timeout, which frees its place.
   * 1013 (try again later): what the web UI's socket reconnects on, with backoff.
   */
  function tooManySockets(connection: Connection, open: number): void {
    const error = { code: 'too_many_sockets', message: `This account already has ${open} open sockets, the most it may have: close one and connect again` }
    // Its own line below, rather than sendError's too: one line per refusal, as one per connection.
    deps.metrics.errorFrameSent(error.code)
    send(connection, errorFrame(error))
    connection.ws.close(1013, 'Too many sockets')
    log.info({ user_id: connection.user.id, format: connection.format, open }, 'websocket refused')
  }

  function opened(connection: Connection, ws: Socket): void {
    connection.ws = ws
    connection.openedAt = performance.now()
    deps.metrics.websocketOpened()
    const { user, format } = connection
    let connections = socketsByUser.get(user.id)
    if (connections && connections.size >= deps.config.wsMaxSocketsPerUser) {
      tooManySockets(connection, connections.size)
      return
    }
    if (!connections) socketsByUser.set(user.id, (connections = new Set()))
    for (const other of connections) {
      connection.user = other.user
      break
    }
    connections.add(connection)
    if (format === 'html') htmlSockets++
    if (format === 'html') {
      ws.subscribe(userHtmlTopic(user.id))
      ready(connection)
      return
    }
    // Registered before its conversations are read, so a conversation created meanwhile is either
    // in what is read or announced to this socket (and subscribed) by the registry: never lost in
    // between. `ready` tells the client its subscriptions are in place: what it reads after it, it
    // gets live after it too. Frames it sent meanwhile are handled at once and answered after
    // `ready`, in order (see answer()).
    const subscribed = conversations.positionsFor(deps.store, user.id).then(
      (positions) => {
        if (ws.readyState !== 1) return
        for (const { id, lastSeq } of positions) {
          sequencer.know(id, lastSeq)
          ws.subscribe(conversationTopic(id))
        }
        ready(connection)
      },
      (error) => {
        // Not left open without its subscriptions, answering nothing: the client reconnects.
        const storage = storageUnavailable(error)
        if (storage) deps.logger.warn({ err: error, reason: storage.reason, user_id: user.id }, 'storage unavailable')
        else deps.logger.error({ err: error, user_id: user.id }, 'websocket open failed')
        if (ws.readyState === 1) ws.close(storage ? 1013 : 1011, storage ? 'Try again later' : 'Internal error')
      },
    )
    connection.answering = subscribed
    void subscribed.then(() => {
      if (connection.answering === subscribed) connection.answering = undefined
    })
  }

  function ready(connection: Connection): void {
    const { user, format } = connection
    send(connection, frame({ type: 'ready', user_id: user.id }))
    log.info({ user_id: user.id, format }, 'websocket connected')
  }

  /**
   * One frame, taken raw: Elysia's own parser would first turn '"text"', '42' or 'true' into
   * values, so a JSON string holding a frame would be decoded twice and run.
   */
  function received(connection: Connection, incoming: string | Buffer): void {
    deps.metrics.frameReceived()
    const refusal = frameLimiter.count(connection)
    if (!refusal) {
      answer(connection, replyTo(connection, incoming))
      return
    }
    answer(connection, () => sendError(connection, refusal))
    // Bun delivers nothing more from a socket once it is closed, so later frames go unanswered.
    if (refusal.close) connection.ws.close(1008, 'Too many frames')
  }

  function closed(connection: Connection, code: number): void {
    const { user, format } = connection
    deps.metrics.websocketClosed(code, connection.backpressured)
    logUnloggedErrors(connection)
    const connections = socketsByUser.get(user.id)
    // A refused socket was never registered, nor logged as connected.
    if (!connections?.delete(connection)) return
    if (connections.size === 0) socketsByUser.delete(user.id)
    if (format === 'html') htmlSockets--
    log.info(
      { user_id: user.id, format, code, duration_ms: Math.round(performance.now() - connection.openedAt), slow_reader: connection.backpressured || undefined },
      'websocket disconnected',
    )
  }

  /**
   * The upgrade, without Elysia's .ws(): for each socket that builds a copy of the whole request
   * context with seven closures, and on open a wrapper of sixteen bound functions, all garbage
   * once the socket is open, and garbage made during upgrades is most of an idle socket's memory
   * (bench/). Reached through Elysia's own WS method (a GET asking for an upgrade, as with .ws())
   * and through GET /ws for the spellings of the Upgrade header Elysia's router misses; the
   * socket's data is its Connection from the start.
   */
  async function upgrade({ request, query, cookie, server: listening, set, status }: Context) {
    let connection: Connection
    try {
      const caller = await upgradeCaller(deps, request, query.token, cookie)
      actingUser(request, caller.user.id)
      connection = new Connection(caller.user, caller.sessionId, query.format === 'html' ? 'html' : 'json', caller.expiresAt, caller.viaCookies)
    } catch (failure) {
      if (failure instanceof DomainError) return status(failure.status as 401, failure.toBody())
      const storage = storageUnavailable(failure)
      if (storage) {
        deps.logger.warn({ err: failure, reason: storage.reason }, 'storage unavailable')
        set.headers['retry-after'] = String(storage.retryAfterSeconds)
        return status(503, storage.toBody())
      }
      // Our fault, not the client's credentials: not a 401 that would send it to sign in again.
      deps.logger.error({ err: failure }, 'websocket upgrade failed')
      return status(500, errorBody('internal_error', 'Internal server error'))
    }
    // Cookies set while authenticating (a renewed web session) go out with the 101, as with .ws().
    const cookies = serializeCookie(set.cookie)
    if (typeof cookies === 'string') set.headers['set-cookie'] = cookies
    const headers = Array.isArray(cookies) ? parseSetCookies(new Headers(set.headers as HeadersInit), cookies) : (set.headers as HeadersInit)
    if (listening?.upgrade(request, { headers, data: connection })) return
    return status(400, errorBody('invalid_upgrade', 'Not a WebSocket handshake: it needs Connection: Upgrade, Sec-WebSocket-Key and Sec-WebSocket-Version: 13'))
  }

  const routes = new Elysia()
    .route('WS', '/ws', upgrade)
    // Elysia routes only `Upgrade: websocket` to WS, spelt just so; the header is case-insensitive
    // (RFC 6455), so any other spelling upgrades here. A plain GET is told how to connect.
    .get(
      '/ws',
      ({ request, query, cookie, server, set, status }) => {
        if (asksForWebSocket(request)) return upgrade({ request, query, cookie, server, set, status } as Context)
        set.headers.upgrade = 'websocket'
        return status(426, errorBody('upgrade_required', 'This is the WebSocket endpoint: connect with a WebSocket client (ws://…/ws?token=<access_token>)'))
      },
      { detail: { hide: true } },
    )

  return {
    routes,
    /** Called once the server listens: server.publish reaches every subscriber, the sender included. */
    attach(listening: Server<unknown>) {
      server = listening
      // One timer for every socket: a timer each would cost each socket memory (bench/).
      expiryChecks ??= setInterval(closeExpired, EXPIRY_CHECK_MS).unref()
    },
    close() {
      unsubscribe()
      stopHearingInterruptions()
      clearInterval(expiryChecks)
      expiryChecks = undefined
    },
  }
}
