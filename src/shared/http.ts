import { isIP } from 'node:net'
import { CloneType, type TSchema } from '@sinclair/typebox'
import { t } from 'elysia'

export const ErrorResponse = t.Object(
  {
    error: t.Object({
      code: t.String(),
      message: t.String(),
      details: t.Optional(t.Array(t.Object({ field: t.String(), message: t.String() }))),
    }),
  },
  { description: 'Every error has this shape' },
)

/** OpenAPI response entries for the error statuses a route can answer. */
export const errors = <const S extends number>(...statuses: S[]) =>
  Object.fromEntries(statuses.map((s) => [s, ErrorResponse])) as Record<S, typeof ErrorResponse>

/**
 * The same error entries as errors(), as OpenAPI response objects: for a route that documents its
 * responses itself (`detail.responses`, as one answering something other than JSON does).
 */
export const errorDocs = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, responseDoc(ErrorResponse.description!, 'application/json', ErrorResponse)]))

/** An OpenAPI response object: a body of `contentType`, described by a schema (for a streamed type, one item of it). */
export const responseDoc = (description: string, contentType: string, schema: TSchema) => ({
  description,
  // A TypeBox schema is a JSON Schema: the spec shows it as it is.
  content: { [contentType]: { schema: schema as never } },
})

/** For routes that need no bearer token (the spec's default is bearerAuth). */
export const PUBLIC = { security: [] as Array<Record<string, string[]>> }

/**
 * A success response's schema, for the API docs and for Elysia's exact-mirror normalisation (a
 * property the schema does not name is dropped, so nothing internal can leak), without a
 * validation pass over every response: the services' own mappers build these objects, and
 * encoding a 50-message page through TypeBox cost about a tenth of the request (bench/).
 */
export const served = <T extends TSchema>(schema: T): T => CloneType(schema, { noValidate: true })

const JSON_HEADERS = { 'content-type': 'application/json;charset=utf-8' }

/**
 * A success body a service has already encoded as JSON (see messages/history.ts historyJson),
 * answered as Elysia answers an object: same content type, and the hooks' headers are added.
 * The route still declares its schema with served(), for the API docs.
 */
export const prebuiltJson = (body: string): Response => new Response(body, { headers: JSON_HEADERS })

/**
 * A file to download, its body streamed as it is read (see messages/export.ts): a private one,
 * never cached. `filename` must be plain ASCII without quotes (ours are made of ids).
 */
export const download = ({ body, filename, contentType }: { body: ReadableStream<Uint8Array>; filename: string; contentType: string }): Response =>
  new Response(body, { headers: { 'content-type': contentType, 'content-disposition': `attachment; filename="${filename}"`, 'cache-control': 'no-store' } })

/** Whether a request asks to become a WebSocket: `Upgrade: websocket`, in any case (RFC 6455). */
export const asksForWebSocket = (request: Request): boolean => request.headers.get('upgrade')?.toLowerCase() === 'websocket'

/**
 * A retried request answered with what the first one stored: the same status and body, plus
 * `Idempotent-Replayed: true` (the IETF Idempotency-Key draft's and Stripe's convention), so a
 * client that cares can tell a replay from a first write.
 */
export function markReplayed(set: { headers: Record<string, string | number> }): void {
  set.headers['idempotent-replayed'] = 'true'
}

/**
 * The entry a trusted proxy wrote in a comma-separated X-Forwarded-* header (For, Proto, Host).
 * Behind `trustProxyHops` proxies it is the Nth entry from the right, the one the farthest trusted
 * proxy wrote: every entry left of it is whatever the client sent, and any right of it describe
 * hops between our own proxies. With fewer entries than hops, the leftmost (proxies that replace
 * the header leave one), as Express does. Nothing without a trusted proxy.
 */
export function forwardedByProxy(request: Request, header: string, trustProxyHops: number): string | undefined {
  if (trustProxyHops <= 0) return undefined
  const entries = (request.headers.get(header) ?? '').split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')
  return entries[Math.max(entries.length - trustProxyHops, 0)]
}

/** An address as one key: lowercase, an IPv4-mapped IPv6 address as its IPv4 form; null if it is none. */
function normalizeIp(raw: string | undefined): string | null {
  if (!raw) return null
  let address = raw.trim().toLowerCase()
  // Some proxies append a port: "203.0.113.7:4711" or "[2001:db8::1]:4711".
  const bracketed = address.match(/^\[([^\]]+)\](?::\d+)?$/)
  if (bracketed) address = bracketed[1]!
  else if (/^\d{1,3}(?:\.\d{1,3}){3}:\d+$/.test(address)) address = address.slice(0, address.lastIndexOf(':'))
  if (address.startsWith('::ffff:') && isIP(address.slice(7)) === 4) address = address.slice(7)
  return isIP(address) ? address : null
}

export type RequestIp = { requestIP?(request: Request): { address: string } | null } | null

/**
 * The client's address. X-Forwarded-For is believed only behind `trustProxyHops` proxies, and
 * then only the entry the farthest trusted proxy wrote (see forwardedByProxy). Without a socket
 * (app.handle in tests) and no trusted header, all requests are one client, 'unknown'.
 */
export function clientIp(request: Request, server: RequestIp, trustProxyHops: number): string {
  const forwarded = normalizeIp(forwardedByProxy(request, 'x-forwarded-for', trustProxyHops))
  if (forwarded) return forwarded
  let socket: string | undefined
  try {
    socket = server?.requestIP?.(request)?.address
  } catch {
    // A request the server did not receive itself (app.handle on a listening app) has no socket.
  }
  return normalizeIp(socket) ?? 'unknown'
}
