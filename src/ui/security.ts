import { Forbidden } from '../shared/errors'

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
 * Cookie-authenticated posts must come from our own pages (CSRF). Browsers send Sec-Fetch-Site
 * (and Origin) with every form post and fetch; a request with neither is refused too.
 */
export function requireSameOrigin(request: Request): void {
  const site = request.headers.get('sec-fetch-site')
  if (site !== null ? site === 'same-origin' : hasOwnOrigin(request)) return
  throw new Forbidden('Cross-site request refused')
}

/** Whether the request's Origin header names this server (the host the request was sent to). */
export function hasOwnOrigin(request: Request): boolean {
  const origin = request.headers.get('origin')
  return origin !== null && URL.parse(origin)?.host === new URL(request.url).host
}

/** Our own origin, or one that ALLOWED_ORIGINS lists. */
export function hasAllowedOrigin(request: Request, allowed: readonly string[]): boolean {
  if (hasOwnOrigin(request)) return true
  const origin = request.headers.get('origin')
  return origin !== null && allowed.includes(origin.toLowerCase())
}

/** Whether the client reached us over HTTPS (cookies are then Secure). */
export const isHttps = (request: Request): boolean => new URL(request.url).protocol === 'https:'
