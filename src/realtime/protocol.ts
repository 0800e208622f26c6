import { conversationFor } from '../conversations/model'
import * as conversations from '../conversations/service'
import { storageUnavailable } from '../db/storage'
import type { AppDeps } from '../deps'
import * as messages from '../messages/service'
import { clientText, unredacted } from '../observability/logger'
import { inSpan } from '../observability/tracing'
import * as presence from '../presence/service'
import { DomainError } from '../shared/errors'
import { validator } from '../shared/validation'
import type { User } from '../users/model'
import type { Connection, Socket, SocketEvents } from './connection'
import { renewedCredentials } from './credentials'
import type { Fanout } from './fanout'
import { createFrameLimiter, createPingLimiter } from './frame-limits'
import { AddMembersFrame, AuthFrame, DeleteFrame, EditFrame, errorFrame, frame, JoinFrame, ReactFrame, RemoveMemberFrame, RenameFrame, ResumeFrame, TypingFrame } from './frames'
import type { Registry } from './registry'
import type { Resume } from './resume'
import { userHtmlTopic } from './topics'

const checkJoin = validator(JoinFrame)
const checkEdit = validator(EditFrame)
const checkDelete = validator(DeleteFrame)
const checkReact = validator(ReactFrame)
const checkResume = validator(ResumeFrame)
const checkAddMembers = validator(AddMembersFrame)
const checkRemoveMember = validator(RemoveMemberFrame)
const checkRename = validator(RenameFrame)
const checkAuth = validator(AuthFrame)
const checkTyping = validator(TypingFrame)

/** Error-frame log lines per connection and minute; the rest are counted in one line. */
export const ERROR_LINES_PER_MINUTE = 10
const MINUTE_MS = 60_000

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

type Reply = () => void
type RefusedError = Pick<DomainError, 'code' | 'message' | 'details'>

/**
 * The WebSocket protocol of one node: a socket's life from open to close, and each frame a client
 * sends, answered in order, by the same service functions REST calls.
 */
export function createProtocol(deps: AppDeps, registry: Registry, fanout: Fanout, resume: Resume) {
  const frameLimiter = createFrameLimiter(deps)
  const pingLimiter = createPingLimiter(deps)
  // The socket lines below hold only ids, codes and numbers, none of them a secret; redaction's
  // garbage was most of what an upgrade allocated, and so of an idle socket's memory (bench/).
  const log = unredacted(deps.logger)
  const { send } = registry

  /** Every error frame goes out here, so each one is logged the same way. */
  function sendError(connection: Connection, error: RefusedError, cause?: Record<string, unknown>): void {
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
    const refuse = (error: RefusedError, cause?: Record<string, unknown>) => () => sendError(connection, error, cause)
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

  /**
   * A change reaches every socket of its conversation, this one too, through the topic; one that
   * changed nothing is answered to this socket alone, so that it knows where the message stands.
   */
  const unchangedAnswer =
    (connection: Connection, type: 'message_edited' | 'message_deleted') =>
    ({ message, eventSeq }: messages.MessageChangeResult): Reply =>
    () => {
      if (eventSeq === null) send(connection, frame({ type, conversation_id: message.conversation_id, message }))
    }

  /** A group change reaches every member's sockets through the topic; one that changed nothing is answered to this socket alone, with the group as it is. */
  const groupAnswer =
    (connection: Connection) =>
    ({ conversation, changed }: conversations.GroupChange): Reply =>
    () => {
      if (!changed) send(connection, frame({ type: 'conversation', conversation: conversationFor(conversation, connection.user.id) }))
    }

  /** What to answer a frame with; a send's answer comes once its batch has committed. */
  function handleFrame(connection: Connection, user: User, data: Record<string, unknown>): Reply | Promise<Reply> {
    switch (data.type) {
      case 'message':
        return postInOrder(connection, user, data).then(({ message, created }) => () => {
          // A new message reached this socket through its topic at commit; a retry of a stored
          // one is answered to this socket alone, since the others already have it.
          if (!created) send(connection, frame({ type: 'message', conversation_id: message.conversation_id, message }))
        })
      case 'edit': {
        const { id, content } = checkEdit(data)
        return messages.edit(deps, user, id, { content }).then(unchangedAnswer(connection, 'message_edited'))
      }
      case 'delete':
        return messages.remove(deps, user, checkDelete(data).id).then(unchangedAnswer(connection, 'message_deleted'))
      case 'react':
      case 'unreact': {
        const { id, emoji } = checkReact(data)
        const added = data.type === 'react'
        return messages.react(deps, user, id, emoji, added).then(({ conversationId, eventSeq }) => () => {
          // Changed nothing: told to this socket alone, as where the reaction stands.
          if (eventSeq === null) send(connection, frame({ type: 'reaction', conversation_id: conversationId, message_id: id, emoji, user_id: user.id, added }))
        })
      }
      case 'add_members': {
        const { conversation_id, member_ids } = checkAddMembers(data)
        return conversations.addMembers(deps, user, conversation_id, { member_ids }).then(groupAnswer(connection))
      }
      case 'remove_member': {
        const { conversation_id, user_id } = checkRemoveMember(data)
        return conversations.removeMember(deps, user, conversation_id, user_id).then(() => () => {})
      }
      case 'rename': {
        const { conversation_id, title } = checkRename(data)
        return conversations.rename(deps, user, conversation_id, { title }).then(groupAnswer(connection))
      }
      case 'resume': {
        const { positions } = checkResume(data)
        connection.awaitingResume = false
        return resume.resume(connection, positions).then(() => () => send(connection, frame({ type: 'resumed' })))
      }
      case 'join': {
        const { conversation_id } = checkJoin(data)
        return conversations.requireMembership(deps.store, user, conversation_id).then((row) => () => {
          fanout.follow(connection, conversation_id, row.lastEventSeq)
          send(connection, frame({ type: 'joined', conversation_id }))
        })
      }
      case 'typing':
        // Answered with nothing: passed on to the others, or dropped (at most one every 2 s).
        return presence.typing(deps, user, checkTyping(data).conversation_id).then(() => () => {})
      case 'ping':
        return () => send(connection, frame({ type: 'pong' }))
      case 'auth':
        return renewedCredentials(deps, connection, checkAuth(data).token).then(() => () => send(connection, frame({ type: 'authenticated' })))
      default:
        throw new DomainError(400, 'unknown_type', `Unknown frame type ${JSON.stringify(data.type)}; expected "message", "edit", "delete", "react", "unreact", "add_members", "remove_member", "rename", "resume", "join", "typing", "ping" or "auth"`)
    }
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

  function ready(connection: Connection): void {
    const { user, format } = connection
    send(connection, frame({ type: 'ready', user_id: user.id }))
    log.info({ user_id: user.id, format }, 'websocket connected')
  }

  const events: SocketEvents = {
    opened(connection: Connection, ws: Socket): void {
      connection.ws = ws
      connection.openedAt = performance.now()
      deps.metrics.websocketOpened()
      const refused = registry.add(connection)
      if (refused !== null) {
        tooManySockets(connection, refused)
        return
      }
      const { user } = connection
      if (connection.format === 'html' || connection.awaitingResume) {
        if (connection.format === 'html') ws.subscribe(userHtmlTopic(user.id))
        ready(connection)
        return
      }
      // Registered before its conversations are read, so a conversation created meanwhile is
      // either in what is read or announced to this socket (and subscribed) by the fan-out: never
      // lost in between. `ready` tells the client its subscriptions are in place: what it reads
      // after it, it gets live after it too. Frames it sent meanwhile are handled at once and
      // answered after `ready`, in order (see answer()).
      const subscribed = conversations.positionsFor(deps.store, user.id).then(
        (positions) => {
          if (ws.readyState !== 1) return
          for (const { id, lastEventSeq } of positions) fanout.follow(connection, id, lastEventSeq)
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
    },

    /**
     * One frame, taken raw: Elysia's own parser would first turn '"text"', '42' or 'true' into
     * values, so a JSON string holding a frame would be decoded twice and run.
     */
    received(connection: Connection, incoming: string | Buffer): void {
      try {
        deps.metrics.frameReceived()
        const refusal = frameLimiter.count(connection)
        if (!refusal) {
          answer(connection, replyTo(connection, incoming))
          return
        }
        answer(connection, () => sendError(connection, refusal))
        // Bun delivers nothing more from a socket once it is closed, so later frames go unanswered.
        if (refusal.close) connection.ws.close(1008, 'Too many frames')
      } catch (error) {
        deps.logger.error({ err: error, user_id: connection.user.id }, 'websocket frame failed')
      }
    },

    pinged(connection: Connection): void {
      if (!pingLimiter.count(connection)) return
      sendError(connection, { code: 'rate_limited', message: `Too many pings: at most ${pingLimiter.perMinute} a minute` })
      connection.ws.close(1008, 'Too many pings')
    },

    closed(connection: Connection, code: number): void {
      const { user, format } = connection
      deps.metrics.websocketClosed(code, connection.backpressured)
      logUnloggedErrors(connection)
      // A refused socket was never registered, nor logged as connected.
      if (!registry.remove(connection)) return
      log.info(
        { user_id: user.id, format, code, duration_ms: Math.round(performance.now() - connection.openedAt), slow_reader: connection.backpressured || undefined },
        'websocket disconnected',
      )
    },
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
    for (const connection of registry.all()) {
      if (connection.expiresAt > now) continue
      sendError(connection, {
        code: 'token_expired',
        message: 'The token this socket was opened with has expired: send {"type":"auth","token":"<access token>"} before it does, or reconnect with a fresh one',
      })
      connection.ws.close(connection.viaCookies ? 1013 : 1008, 'Token expired')
    }
  }

  return { events, closeExpired }
}
