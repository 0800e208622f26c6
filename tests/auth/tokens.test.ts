import { afterEach, describe, expect, setSystemTime, test } from 'bun:test'
import { createTokens } from '../../src/auth/tokens'
import { TEST_SECRET } from '../support/app'

const claims = { userId: 'u1', sessionId: 's1', version: 0 }
const tokens = () => createTokens({ secret: TEST_SECRET, accessTtlSeconds: 60, refreshTtlSeconds: 3600 })

afterEach(() => setSystemTime())

describe('tokens.verify', () => {
  test('an access token verified once is still refused once it expires', async () => {
    const t = tokens()
    const { access_token } = await t.issuePair(claims, 'jti-1')
    expect(await t.verify(access_token, 'access')).toMatchObject(claims)
    expect(await t.verify(access_token, 'access')).toMatchObject(claims) // the remembered signature check
    setSystemTime(new Date(Date.now() + 61_000))
    await expect(t.verify(access_token, 'access')).rejects.toMatchObject({ status: 401, code: 'token_expired' })
  })

  test('a verified access token is never taken as a refresh token, nor the reverse', async () => {
    const t = tokens()
    const { access_token, refresh_token } = await t.issuePair(claims, 'jti-1')
    await t.verify(access_token, 'access')
    await t.verify(refresh_token, 'refresh')
    await expect(t.verify(access_token, 'refresh')).rejects.toMatchObject({ code: 'invalid_token' })
    await expect(t.verify(refresh_token, 'access')).rejects.toMatchObject({ code: 'invalid_token' })
  })

  test('a token with one character changed is refused even after the genuine one was verified', async () => {
    const t = tokens()
    const { access_token } = await t.issuePair(claims, 'jti-1')
    await t.verify(access_token, 'access')
    // A character inside the signature (the last one may only carry padding bits).
    const i = access_token.length - 10
    const forged = access_token.slice(0, i) + (access_token[i] === 'A' ? 'B' : 'A') + access_token.slice(i + 1)
    await expect(t.verify(forged, 'access')).rejects.toMatchObject({ code: 'invalid_token' })
  })
})
