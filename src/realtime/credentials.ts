import type { Cookie } from 'elysia'
import { decodeJwt } from 'jose'
import { credentialsOf, REFRESH_COOKIE, ACCESS_COOKIE } from '../auth/credentials'
import { authenticate, type Authenticated } from '../auth/service'
import type { AppDeps } from '../deps'
import { DomainError, Forbidden, Unauthorized } from '../shared/errors'
import { hasAllowedOrigin, isHttps } from '../ui/security'
import { browserSession } from '../ui/session'

/** When a token verified before stops being valid (ms since the epoch). */
const expiryOf = (token: string): number => (decodeJwt(token).exp ?? 0) * 1000

/** Who opens a socket, until when its credentials hold, and whether they were the web UI's session cookies. */
export type Caller = Authenticated & { expiresAt: number; viaCookies: boolean }

type Cookies = Record<string, Cookie<unknown>>

/**
 * The caller of an upgrade, from its credentials (auth/credentials.ts): an explicit token
 * (`?token=`, then `Authorization: Bearer`), else the web UI's session cookies. A cookie is sent by
 * the browser whatever page opened the socket, so a cookie-authenticated upgrade must come from a
 * page of this server (same Origin).
 */
export async function upgradeCaller(deps: AppDeps, request: Request, queryToken: string | undefined, cookie: Cookies): Promise<Caller> {
  const presented = credentialsOf(request, queryToken)
  if (presented.token) return { ...(await authenticate(deps.store, deps.tokens, presented.token)), expiresAt: expiryOf(presented.token), viaCookies: false }
  if (presented.access || presented.refresh) {
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
async function browserSocketExpiry(deps: AppDeps, cookie: Cookies, caller: Authenticated): Promise<number> {
  // Read from the jar after browserSession: a session renewed during the upgrade has its new tokens there.
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

/**
 * A fresh access token of a socket's own user (an `auth` frame): the socket then closes when that
 * one expires, and with that token's session. A bad token changes nothing.
 */
export async function renewedCredentials(deps: AppDeps, socket: { user: { id: string }; sessionId: string; expiresAt: number }, token: string): Promise<void> {
  const caller = await authenticate(deps.store, deps.tokens, token)
  if (caller.user.id !== socket.user.id) throw new Forbidden('This token belongs to another user: a socket stays with the user who opened it')
  socket.sessionId = caller.sessionId
  socket.expiresAt = Math.max(socket.expiresAt, expiryOf(token))
}
