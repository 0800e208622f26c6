import { Elysia, serializeCookie, type Context } from 'elysia'
import { parseSetCookies } from 'elysia/adapter/utils'
import { storageUnavailable } from '../db/storage'
import type { AppDeps } from '../deps'
import { actingUser } from '../observability/requests'
import { DomainError, errorBody } from '../shared/errors'
import { asksForWebSocket } from '../shared/http'
import { Connection, type SocketEvents } from './connection'
import { upgradeCaller } from './credentials'

/**
 * The WebSocket endpoint, GET /ws: who is calling (credentials.ts), then the upgrade, with the
 * socket's Connection as its data from the start.
 *
 * Without Elysia's .ws(): for each socket that builds a copy of the whole request context with
 * seven closures, and on open a wrapper of sixteen bound functions, all garbage once the socket is
 * open, and garbage made during upgrades is most of an idle socket's memory (bench/). Reached
 * through Elysia's own WS method (a GET asking for an upgrade, as with .ws()) and through GET /ws
 * for the spellings of the Upgrade header Elysia's router misses.
 */
export function upgradeRoutes(deps: AppDeps, events: SocketEvents) {
  async function upgrade({ request, query, cookie, server: listening, set, status }: Context) {
    let connection: Connection
    try {
      const caller = await upgradeCaller(deps, request, query.token, cookie)
      actingUser(request, caller.user.id)
      connection = new Connection(events, caller.user, caller.sessionId, query.format === 'html' ? 'html' : 'json', caller.expiresAt, caller.viaCookies)
      if (query.resume === '1' && connection.format === 'json') connection.awaitingResume = true
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

  return (
    new Elysia()
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
  )
}
