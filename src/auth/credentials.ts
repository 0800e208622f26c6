/** The cookies the web UI keeps its session's tokens in (HttpOnly; set by the UI's login). */
export const ACCESS_COOKIE = 'pneumatic_access'
export const REFRESH_COOKIE = 'pneumatic_refresh'

/**
 * What a request presents to say who sends it, read here once for the REST guard, the WebSocket
 * upgrade and the rate limit:
 * - `token`: an access token given explicitly, as `?token=` on the WebSocket upgrade (a browser
 *   cannot set headers there; the caller passes it) or else as `Authorization: Bearer`;
 * - `access`, `refresh`: the web UI's session cookies, which the browser sends whatever page
 *   made the request.
 */
export type Credentials = { token?: string; access?: string; refresh?: string }

export function credentialsOf(request: Request, queryToken?: string | null): Credentials {
  const credentials: Credentials = {}
  const token = explicitToken(request, queryToken)
  if (token) credentials.token = token
  const header = request.headers.get('cookie')
  if (header) {
    // Bun's own parser: cookies are read before Elysia parses them (the rate limit runs onRequest).
    const cookies = new Bun.CookieMap(header)
    const access = cookies.get(ACCESS_COOKIE)
    const refresh = cookies.get(REFRESH_COOKIE)
    if (access) credentials.access = access
    if (refresh) credentials.refresh = refresh
  }
  return credentials
}

/** Only the explicit token of credentialsOf(): all the REST API's guard reads (no cookies). */
export function explicitToken(request: Request, queryToken?: string | null): string | undefined {
  if (queryToken) return queryToken
  // `Authorization: Bearer <token>`
  return request.headers.get('authorization')?.match(/^Bearer\s+(\S+)\s*$/i)?.[1]
}
