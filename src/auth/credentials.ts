/** The cookie the web UI keeps its access token in (HttpOnly; set by the UI's login). */
export const ACCESS_COOKIE = 'pneumatic_access'

/** The token from an `Authorization: Bearer <token>` header, if there is one. */
export function bearerToken(header: string | null | undefined): string | undefined {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i)
  return match?.[1]
}
