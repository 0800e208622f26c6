import { afterEach, describe, expect, setSystemTime, test } from 'bun:test'
import { createTokens } from '../../src/auth/tokens'
import { TEST_SECRET } from '../support/app'

const claims = { userId: 'u1', sessionId: 's1', version: 0 }
const tokens = () => createTokens({ secret: TEST_SECRET, accessTtlSeconds: 60, refreshTtlSeconds: 3600 })
const issue = (refreshJti = 'jti-1', issuedAt = Date.now()) => ({ refreshJti, issuedAt })

afterEach(() => setSystemTime())

describe('tokens.verify', () => {
  test('an access token verified once is still refused once it expires', async () => {
    const t = tokens()
    const { access_token } = await t.issuePair(claims, issue())
    expect(await t.verify(access_token, 'access')).toMatchObject(claims)
    expect(await t.verify(access_token, 'access')).toMatchObject(claims) // the remembered signature check
    setSystemTime(new Date(Date.now() + 61_000))
    await expect(t.verify(access_token, 'access')).rejects.toMatchObject({ status: 401, code: 'token_expired' })
  })

  test('a verified access token is never taken as a refresh token, nor the reverse', async () => {
    const t = tokens()
    const { access_token, refresh_token } = await t.issuePair(claims, issue())
    await t.verify(access_token, 'access')
    await t.verify(refresh_token, 'refresh')
    await expect(t.verify(access_token, 'refresh')).rejects.toMatchObject({ code: 'invalid_token' })
    await expect(t.verify(refresh_token, 'access')).rejects.toMatchObject({ code: 'invalid_token' })
  })

  test('a token with one character changed is refused even after the genuine one was verified', async () => {
    const t = tokens()
    const { access_token } = await t.issuePair(claims, issue())
    await t.verify(access_token, 'access')
    // A character inside the signature (the last one may only carry padding bits).
    const i = access_token.length - 10
    const forged = access_token.slice(0, i) + (access_token[i] === 'A' ? 'B' : 'A') + access_token.slice(i + 1)
    await expect(t.verify(forged, 'access')).rejects.toMatchObject({ code: 'invalid_token' })
  })
})

describe('tokens.issuePair', () => {
  test('signs the same pair again for the same claims and issue, and another for any other', async () => {
    const t = tokens()
    const at = Date.now() - 5_000
    const pair = await t.issuePair(claims, issue('jti-1', at))
    expect(await t.issuePair(claims, issue('jti-1', at))).toEqual(pair)
    const others = [
      await t.issuePair(claims, issue('jti-2', at)),
      await t.issuePair(claims, issue('jti-1', at - 1_000)),
      await t.issuePair({ ...claims, version: 1 }, issue('jti-1', at)),
    ]
    for (const other of others) {
      expect(other.access_token).not.toBe(pair.access_token)
      expect(other.refresh_token).not.toBe(pair.refresh_token)
    }
  })

  test('dates both tokens from the issue, not from the signing: iat is the issue, exp the issue plus each lifetime', async () => {
    const t = tokens()
    const at = Date.now() - 5_000
    const { access_token, refresh_token } = await t.issuePair(claims, issue('jti-1', at))
    const payload = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString())
    const iat = Math.floor(at / 1000)
    expect(payload(access_token)).toMatchObject({ iat, exp: iat + 60 })
    expect(payload(refresh_token)).toMatchObject({ iat, exp: iat + 3600, jti: 'jti-1' })
    expect(payload(access_token).jti).not.toBe('jti-1')
  })
})
