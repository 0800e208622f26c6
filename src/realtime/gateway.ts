import type { Server, ServerWebSocket } from 'bun'
import { Elysia, type Cookie } from 'elysia'
import { livePush } from '../../views/chat'
import { ACCESS_COOKIE, bearerToken } from '../auth/credentials'
import { authenticate, type Authenticated } from '../auth/service'
import { conversationFor } from '../conversations/model'
import * as conversations from '../conversations/service'
import type { AppDeps } from '../deps'
import type { Message } from '../messages/model'
import * as messages from '../messages/service'
import { createFrameLimiter } from '../observability/rate-limit'
import { inSpan } from '../observability/tracing'
import { hasAllowedOrigin, isHttps } from '../ui/security'
import { browserSession, REFRESH_COOKIE } from '../ui/session'
import { DomainError, Forbidden, Unauthorized } from '../shared/errors'
import type { DomainEvent } from '../shared/events'
import { validator } from '../shared/validation'
import type { User } from '../users/model'
import { errorFrame, frame, JoinFrame } from './frames'
import { conversationTopic, userHtmlTopic } from './topics'

/** Bun's per-socket limits, set deliberately rather than left at Bun's 16 MB / 120 s defaults. */
export const websocketOptions = (config: { wsIdleTimeoutSeconds: number }) =>
  ({
    maxPayloadLength: 64 * 1024,
    backpressureLimit: 1024 * 1024,
    // A reader that stops reading is disconnected, never silently skipped: it reconnects and
    // catches up with ?after=<seq>.
    closeOnBackpressureLimit: true,
    // Bun pings a quiet socket and closes one that answers nothing within the timeout.
    idleTimeout: config.wsIdleTimeoutSeconds,
    sendPings: true,
    perMessageDeflate: false,
  }) as const

type Socket = ServerWebSocket<unknown>

/** What Elysia's Bun websocket handler calls on ws.data once a socket is open. */
type SlimData = { message(ws: Socket, frame: string | Buffer): void; close(ws: Socket, code: number): void }

const checkJoin = validator(JoinFrame)

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/**
 * The credentials of an upgrade: `?token=`, then `Authorization: Bearer`, then the web UI's
 * session cookie. A cookie is sent by the browser whatever page opened the socket, so a
 * cookie-authenticated upgrade must come from a page of this server (same Origin).
 */
async function upgradeCaller(deps: AppDeps, request: Request, token: string | undefined, cookie: Record<string, Cookie<unknown>>): Promise<Authenticated> {
  const explicit = token || bearerToken(request.headers.get('authorization'))
  if (explicit) return authenticate(deps.db, deps.tokens, explicit)
  if (cookie[ACCESS_COOKIE]?.value || cookie[REFRESH_COOKIE]?.value) {
    if (!hasAllowedOrigin(request, deps.config.allowedOrigins)) throw new Forbidden('Cross-origin WebSocket upgrade refused')
    const caller = await browserSession(deps, cookie, isHttps(request))
    if (caller) return caller
    throw new Unauthorized('Session expired: sign in again', 'invalid_token')
  }
  throw new Unauthorized('Missing token: use ?token=, an Authorization header or a session cookie', 'missing_token')
}

/** JSON frames for API clients; rendered HTML pushes for the web UI (`?format=html`). */
type Format = 'json' | 'html'
type Upgrade = Authenticated & { format: Format }

/**
 * Each process's WebSocket endpoint. It keeps its own sockets by user, subscribes them to the
 * topics of their conversations, and turns bus events into frames for them.
 */
export function createGateway(deps: AppDeps) {
  // Every socket by user: JSON ones are subscribed to conversations created while they are open
  // (UI ones listen on one topic per user instead), and all close when their session ends.
  const socketsByUser = new Map<string, Set<Socket>>()
  const upgradeOf = new WeakMap<Socket, Upgrade>()
  let htmlSockets = 0
  let server: Server<unknown> | null = null

  /** Each member's UI pages get the push rendered for them (a 1-on-1 is named differently per side). */
  function pushHtml(listening: Server<unknown>, message: Message): void {
    const record = conversations.recordById(deps.db, message.conversation_id)
    if (!record) return
    for (const member of record.members) {
      const topic = userHtmlTopic(member.id)
      if (listening.subscriberCount(topic) > 0) listening.publish(topic, livePush(record, message, member.id))
    }
  }

  function deliver(event: DomainEvent): void {
    if (server) inSpan('fanout', { 'event.type': event.type }, () => deliverTo(server!, event))
  }

  function deliverTo(listening: Server<unknown>, event: DomainEvent): void {
    switch (event.type) {
      case 'message.created':
        listening.publish(conversationTopic(event.message.conversation_id), frame({ type: 'message', message: event.message }))
        if (htmlSockets > 0) pushHtml(listening, event.message)
        return
      case 'conversation.created': {
        const topic = conversationTopic(event.conversation.id)
        for (const member of event.conversation.members) {
          const sockets = socketsByUser.get(member.id)
          if (!sockets) continue
          const data = frame({ type: 'conversation', conversation: conversationFor(event.conversation, member.id) })
          for (const ws of sockets) {
            if (upgradeOf.get(ws)?.format !== 'json') continue
            ws.subscribe(topic)
            ws.send(data)
          }
        }
        return
      }
      case 'session.ended':
        // Logged out: the session's sockets (all the user's, for "everywhere") may not stay open.
        for (const ws of socketsByUser.get(event.userId) ?? []) {
          if (event.sessionId === null || upgradeOf.get(ws)?.sessionId === event.sessionId) ws.close(1008, 'Session ended')
        }
        return
    }
  }

  const unsubscribe = deps.bus.subscribe(deliver)
  const frameLimiter = createFrameLimiter(deps)

  /** Every error frame goes out here, so each one is logged the same way. */
  function sendError(ws: Socket, user: User, error: Pick<DomainError, 'code' | 'message' | 'details'>, cause?: Record<string, unknown>): void {
    deps.logger.info({ user_id: user.id, code: error.code, frame_type: typeof cause?.type === 'string' ? cause.type : undefined }, 'websocket error frame')
    deps.metrics.errorFrameSent(error.code)
    ws.send(errorFrame(error, cause))
  }

  type Reply = () => void

  /**
   * Each socket's frames are answered in the order they came. A send is answered only once its
   * batch has committed, so a later frame's answer (a pong, an error) waits behind it, while its
   * work starts at once: a client's pipelined sends still share one batch.
   */
  const answering = new WeakMap<Socket, Promise<void>>()
  function answer(ws: Socket, reply: Reply | Promise<Reply>): void {
    const earlier = answering.get(ws)
    if (earlier === undefined && typeof reply === 'function') return reply()
    const done = Promise.all([earlier, reply])
      .then(([, send]) => send())
      .catch((error) => deps.logger.error({ err: error }, 'websocket reply failed'))
    answering.set(ws, done)
    void done.then(() => {
      if (answering.get(ws) === done) answering.delete(ws)
    })
  }

  /** One raw frame from a client: parsed here once, answered with an error frame when bad. */
  function onFrame(ws: Socket, user: User, incoming: string | Buffer): void {
    answer(ws, replyTo(ws, user, incoming))
  }

  function replyTo(ws: Socket, user: User, incoming: string | Buffer): Reply | Promise<Reply> {
    const refuse = (error: Pick<DomainError, 'code' | 'message' | 'details'>, cause?: Record<string, unknown>) => () => sendError(ws, user, error, cause)
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
    const failed = (error: unknown): Reply => {
      if (error instanceof DomainError) return refuse(error, frameData)
      deps.logger.error({ err: error, user_id: user.id, frame_type: frameData.type }, 'websocket frame failed')
      return refuse({ code: 'internal_error', message: 'Internal error' }, frameData)
    }
    try {
      const reply = inSpan('ws.frame', { 'ws.frame.type': String(frameData.type).slice(0, 32), 'enduser.id': user.id }, () => handleFrame(ws, user, frameData))
      return typeof reply === 'function' ? reply : reply.catch(failed)
    } catch (error) {
      return failed(error)
    }
  }

  /** What to answer a frame with; a send's answer comes once its batch has committed. */
  function handleFrame(ws: Socket, user: User, data: Record<string, unknown>): Reply | Promise<Reply> {
    switch (data.type) {
      case 'message':
        return messages.post(deps, user, data).then(({ message, created }) => () => {
          // A new message reached this socket through its topic at commit; a retry of a stored
          // one is answered to this socket alone, since the others already have it.
          if (!created) ws.send(frame({ type: 'message', message }))
        })
      case 'join': {
        const { conversation_id } = checkJoin(data)
        conversations.requireMembership(deps.db, user, conversation_id)
        return () => {
          ws.subscribe(conversationTopic(conversation_id))
          ws.send(frame({ type: 'joined', conversation_id }))
        }
      }
      case 'ping':
        return () => ws.send(frame({ type: 'pong' }))
      default:
        throw new DomainError(400, 'unknown_type', `Unknown frame type ${JSON.stringify(data.type)}; expected "message", "join" or "ping"`)
    }
  }

  const routes = new Elysia()
    .resolve(async ({ request, query, cookie }) => {
      try {
        const format: Format = query.format === 'html' ? 'html' : 'json'
        return { upgrade: { ...(await upgradeCaller(deps, request, query.token, cookie)), format } satisfies Upgrade }
      } catch (error) {
        return { upgrade: { error: error as Error } }
      }
    })
    .ws('/ws', {
      beforeHandle({ upgrade, status }) {
        if ('error' in upgrade) {
          const error = upgrade.error instanceof DomainError ? upgrade.error : new Unauthorized()
          return status(error.status as 401, error.toBody())
        }
      },
      open(ws) {
        const upgrade = ws.data.upgrade as Upgrade
        const { user, format } = upgrade
        const raw = ws.raw as Socket
        deps.metrics.websocketOpened(raw)
        let sockets = socketsByUser.get(user.id)
        if (!sockets) socketsByUser.set(user.id, (sockets = new Set()))
        sockets.add(raw)
        upgradeOf.set(raw, upgrade)
        if (format === 'html') {
          htmlSockets++
          raw.subscribe(userHtmlTopic(user.id))
        } else {
          // Registering and subscribing happen in one synchronous step, so a conversation created
          // meanwhile is either in this list or announced to this socket: never lost in between.
          for (const id of conversations.idsFor(deps.db, user.id)) raw.subscribe(conversationTopic(id))
        }
        // Take frames raw. Elysia's own parser would first turn '"text"', '42' or 'true' into values,
        // so a JSON string holding a frame would be decoded twice and run. Elysia's Bun handler
        // delivers each frame to data.message; the gateway tests fail if that ever changes.
        const admit = frameLimiter.guard(raw, (incoming: string | Buffer) => onFrame(raw, user, incoming), (refusal) => answer(raw, () => sendError(raw, user, refusal)))
        // Elysia's data for the socket is the whole upgrade request's context (the Request, its
        // headers, cookies, query), kept alive by its handlers' closures for as long as the
        // socket lives: most of an idle socket's memory (bench/). Once open, the socket keeps
        // only what Elysia's Bun handler calls (see above), pointing at this gateway's own code.
        const openedAt = performance.now()
        const slim: SlimData = {
          message: (_, incoming) => {
            deps.metrics.frameReceived()
            admit(incoming)
          },
          close: (_, code) => closed(raw, upgrade, code, openedAt),
        }
        raw.data = slim
        raw.send(frame({ type: 'ready', user_id: user.id }))
        deps.logger.info({ user_id: user.id, format }, 'websocket connected')
      },
      close(ws, code) {
        // Reached only by a socket whose open() failed before its data was slimmed.
        const upgrade = ws.data.upgrade as Upgrade | { error: Error }
        if ('user' in upgrade) closed(ws.raw as Socket, upgrade, code)
      },
    })

  function closed(raw: Socket, { user, format }: Upgrade, code: number, opened?: number): void {
    deps.metrics.websocketClosed(raw, code)
    deps.logger.info({ user_id: user.id, format, code, duration_ms: opened === undefined ? undefined : Math.round(performance.now() - opened) }, 'websocket disconnected')
    if (format === 'html') htmlSockets--
    const sockets = socketsByUser.get(user.id)
    sockets?.delete(raw)
    if (sockets?.size === 0) socketsByUser.delete(user.id)
  }

  return {
    routes,
    /** Called once the server listens: server.publish reaches every subscriber, the sender included. */
    attach(listening: Server<unknown>) {
      server = listening
    },
    close: unsubscribe,
  }
}
