import { errors as joseErrors, jwtVerify, SignJWT } from 'jose'
import { rememberBounded } from '../shared/bounded'
import { Unauthorized } from '../shared/errors'

export type TokenKind = 'access' | 'refresh'

export type TokenPair = { access_token: string; refresh_token: string; token_type: 'bearer' }

/** Whose token it is: the user, the login session it belongs to, and the user's token version then. */
export type SessionClaims = { userId: string; sessionId: string; version: number }
export type VerifiedToken = SessionClaims & { jti: string }

/**
 * One issue of a session's token pair: the refresh token's id and when it was issued (epoch ms).
 * The pair is a function of it and the claims, so the same issue signs the same bytes again.
 */
export type Issue = { refreshJti: string; issuedAt: number }

export type Tokens = {
  /** An access and a refresh token for a session; the same claims and issue give the same pair. */
  issuePair(claims: SessionClaims, issue: Issue): Promise<TokenPair>
  /** The claims of a token that is well-formed, ours, unexpired and of `kind`; else Unauthorized. */
  verify(token: string, kind: TokenKind): Promise<VerifiedToken>
}

// The kinds differ in the JOSE `typ` header (RFC 9068 names access tokens "at+jwt"), which jose
// checks on verify: a refresh token is never accepted as a bearer token, nor the reverse.
const TYP: Record<TokenKind, string> = { access: 'at+jwt', refresh: 'rt+jwt' }
const ALGORITHM = 'HS256'
const MAX_VERIFIED_TOKENS = 10_000

export function createTokens(opts: { secret: string; accessTtlSeconds: number; refreshTtlSeconds: number }): Tokens {
  const key = new TextEncoder().encode(opts.secret)
  const ttl: Record<TokenKind, number> = { access: opts.accessTtlSeconds, refresh: opts.refreshTtlSeconds }

  // HS256 is deterministic: the same header and claims sign to the same token.
  const sign = (claims: SessionClaims, kind: TokenKind, jti: string, issuedAt: number) => {
    const iat = Math.floor(issuedAt / 1000)
    return new SignJWT({ sid: claims.sessionId, ver: claims.version })
      .setProtectedHeader({ alg: ALGORITHM, typ: TYP[kind] })
      .setSubject(claims.userId)
      .setJti(jti)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ttl[kind])
      .sign(key)
  }

  /**
   * Access tokens whose signature was already checked, so a client's every request (and the rate
   * limiter before the auth guard) does not compute the same HMAC again. Only the signature check
   * is remembered: expiry is checked on each use, and callers still check the session (which
   * auth/service.ts remembers only until it ends), so a logout takes effect at once. Bounded: the
   * oldest entry goes first.
   */
  const verifiedAccess = new Map<string, { claims: VerifiedToken; expiresAt: number }>()

  return {
    async issuePair(claims, { refreshJti, issuedAt }) {
      const [access_token, refresh_token] = await Promise.all([
        sign(claims, 'access', `${refreshJti}.access`, issuedAt),
        sign(claims, 'refresh', refreshJti, issuedAt),
      ])
      return { access_token, refresh_token, token_type: 'bearer' }
    },
    async verify(token, kind) {
      if (kind === 'access') {
        const known = verifiedAccess.get(token)
        if (known !== undefined) {
          if (Date.now() < known.expiresAt) return known.claims
          verifiedAccess.delete(token)
          throw new Unauthorized('Token has expired', 'token_expired')
        }
      }
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms: [ALGORITHM],
          typ: TYP[kind],
          requiredClaims: ['exp', 'iat', 'sub', 'jti', 'sid', 'ver'],
        })
        const { sub, jti, sid, ver } = payload
        if (typeof sid !== 'string' || typeof ver !== 'number' || !Number.isInteger(ver)) throw new Error('malformed session claims')
        const claims = { userId: sub!, sessionId: sid, version: ver, jti: jti! }
        if (kind === 'access') rememberBounded(verifiedAccess, token, { claims, expiresAt: payload.exp! * 1000 }, MAX_VERIFIED_TOKENS)
        return claims
      } catch (error) {
        if (error instanceof joseErrors.JWTExpired) throw new Unauthorized('Token has expired', 'token_expired')
        throw new Unauthorized(`Invalid ${kind} token`, 'invalid_token')
      }
    },
  }
}
