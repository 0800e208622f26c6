import { Forbidden } from '../shared/errors'
import { forwardedByProxy } from '../shared/http'

/** A fresh nonce per HTML response, for the CSP and the page's own <style>. */
export const newNonce = (): string => Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64')

/** Headers every response carries. JSON needs no sources at all; pages widen this with their own CSP. */
export const BASE_SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
} as const

/** The policy for pages: our own scripts and styles only, no inline script, no eval, never framed. */
export const pageCsp = (nonce: string): string =>
  [
    "default-src 'self'",
    "script-src 'self'",
    `style-src 'self' 'nonce-${nonce}'`,
    "img-src 'self' data:",
    "connect-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "object-src 'none'",
    "frame-ancestors 'none'",
  ].join('; ')

/**
 * Behind a TLS-terminating proxy a request reaches us as http://, so what the client used is read
 * from the proxy's X-Forwarded-Proto and X-Forwarded-Host, and only when TRUST_PROXY says a proxy
 * is there: anyone talking to us directly can send those headers. Of a list (several proxies),
 * the entry the farthest trusted proxy wrote counts, as for X-Forwarded-For: it saw the client's
 * own connection; entries left of it are the client's, entries right of it our proxies' hops.
 */
function forwardedScheme(request: Request, trustProxyHops: number): 'http:' | 'https:' | null {
  const proto = forwardedByProxy(request, 'x-forwarded-proto', trustProxyHops)?.toLowerCase()
  return proto === 'https' ? 'https:' : proto === 'http' ? 'http:' : null
}

const BARE_HOST = /^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i

/** The host (and port) the client asked for: a trusted proxy's X-Forwarded-Host, else the request's Host. */
function requestedHost(request: Request, trustProxyHops: number, scheme: string | null): string {
  const forwarded = forwardedByProxy(request, 'x-forwarded-host', trustProxyHops)
  // A bare host[:port] only; anything else in the header is not a host we answer for.
  const url = forwarded !== undefined && BARE_HOST.test(forwarded) ? URL.parse(`${scheme ?? 'http:'}//${forwarded}`) : null
  return url?.host || new URL(request.url).host
}

/** Whether the client reached us over HTTPS: directly, or through a trusted proxy that says so. */
export const isHttps = (request: Request, trustProxyHops: number): boolean =>
  (forwardedScheme(request, trustProxyHops) ?? new URL(request.url).protocol) === 'https:'

/**
 * Cookie-authenticated posts must come from our own pages (CSRF). Browsers send Sec-Fetch-Site
 * (and Origin) with every form post and fetch; a request with neither is refused too.
 */
export function requireSameOrigin(request: Request, trustProxyHops: number): void {
  const site = request.headers.get('sec-fetch-site')
  if (site !== null ? site === 'same-origin' : hasOwnOrigin(request, trustProxyHops)) return
  throw new Forbidden('Cross-site request refused')
}

/**
 * Whether the request's Origin header names this server: the host the client asked for and, when
 * a trusted proxy says which scheme the client used, that scheme too. Without one the scheme is
 * not compared: behind a proxy we are not told about, every request looks like http://.
 */
function hasOwnOrigin(request: Request, trustProxyHops: number): boolean {
  const origin = URL.parse(request.headers.get('origin') ?? '')
  if (!origin) return false
  const scheme = forwardedScheme(request, trustProxyHops)
  return origin.host === requestedHost(request, trustProxyHops, scheme) && (scheme === null || origin.protocol === scheme)
}

/** Our own origin, or one that ALLOWED_ORIGINS lists. */
export function hasAllowedOrigin(request: Request, allowed: readonly string[], trustProxyHops: number): boolean {
  if (hasOwnOrigin(request, trustProxyHops)) return true
  const origin = request.headers.get('origin')
  return origin !== null && allowed.includes(origin.toLowerCase())
}
