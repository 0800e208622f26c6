import { errors as joseErrors, jwtVerify, SignJWT } from 'jose'
import { newId } from '../shared/ids'
import { Unauthorized } from '../shared/errors'

export type TokenKind = 'access' | 'refresh'

export type TokenPair = { access_token: string; refresh_token: string; token_type: 'bearer' }

export type Tokens = {
  issuePair(userId: string): Promise<TokenPair>
  /** Returns the user id the token was issued to; throws Unauthorized for any bad token. */
  verify(token: string, kind: TokenKind): Promise<string>
}

// The kinds differ in the JOSE `typ` header (RFC 9068 names access tokens "at+jwt"), which jose
// checks on verify: a refresh token is never accepted as a bearer token, nor the reverse.
const TYP: Record<TokenKind, string> = { access: 'at+jwt', refresh: 'rt+jwt' }
const ALGORITHM = 'HS256'

export function createTokens(opts: { secret: string; accessTtlSeconds: number; refreshTtlSeconds: number }): Tokens {
  const key = new TextEncoder().encode(opts.secret)
  const ttl: Record<TokenKind, number> = { access: opts.accessTtlSeconds, refresh: opts.refreshTtlSeconds }

  const sign = (userId: string, kind: TokenKind) =>
    new SignJWT({})
      .setProtectedHeader({ alg: ALGORITHM, typ: TYP[kind] })
      .setSubject(userId)
      .setJti(newId())
      .setIssuedAt()
      .setExpirationTime(`${ttl[kind]}s`)
      .sign(key)

  return {
    async issuePair(userId) {
      const [access_token, refresh_token] = await Promise.all([sign(userId, 'access'), sign(userId, 'refresh')])
      return { access_token, refresh_token, token_type: 'bearer' }
    },
    async verify(token, kind) {
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms: [ALGORITHM],
          typ: TYP[kind],
          requiredClaims: ['exp', 'iat', 'sub'],
        })
        return payload.sub as string
      } catch (error) {
        if (error instanceof joseErrors.JWTExpired) throw new Unauthorized('Token has expired', 'token_expired')
        throw new Unauthorized(`Invalid ${kind} token`, 'invalid_token')
      }
    },
  }
}
