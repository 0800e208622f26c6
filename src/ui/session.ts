import type { Cookie } from 'elysia'
import { ACCESS_COOKIE, REFRESH_COOKIE } from '../auth/credentials'
import * as auth from '../auth/service'
import type { TokenPair } from '../auth/tokens'
import type { AppDeps } from '../deps'
import { DomainError } from '../shared/errors'
import type { User } from '../users/model'

type Cookies = Record<string, Cookie<unknown>>

const read = (cookie: Cookies, name: string): string | undefined => {
  const value = cookie[name]?.value
  return typeof value === 'string' && value !== '' ? value : undefined
}

/** The browser's session: HttpOnly (no script can read it), SameSite=Lax, Secure over HTTPS. */
export function startSession(cookie: Cookies, pair: TokenPair, deps: Pick<AppDeps, 'config'>, secure: boolean): void {
  const base = { httpOnly: true, sameSite: 'lax', secure, path: '/' } as const
  cookie[ACCESS_COOKIE]!.set({ ...base, value: pair.access_token, maxAge: deps.config.accessTokenTtlSeconds })
  cookie[REFRESH_COOKIE]!.set({ ...base, value: pair.refresh_token, maxAge: deps.config.refreshTokenTtlSeconds })
}

export function endSession(cookie: Cookies, secure: boolean): void {
  for (const name of [ACCESS_COOKIE, REFRESH_COOKIE]) {
    cookie[name]!.set({ value: '', httpOnly: true, sameSite: 'lax', secure, path: '/', maxAge: 0 })
  }
}

/**
 * The signed-in caller from the session cookies. An expired access token is renewed silently from
 * the refresh token (which rotates: new cookies are set); without a usable token the answer is null.
 */
export async function browserSession(deps: AppDeps, cookie: Cookies, secure: boolean): Promise<auth.Authenticated | null> {
  const access = read(cookie, ACCESS_COOKIE)
  if (access) {
    try {
      return await auth.authenticate(deps.store, deps.tokens, access)
    } catch (error) {
      if (!(error instanceof DomainError)) throw error
    }
  }
  const refresh = read(cookie, REFRESH_COOKIE)
  if (!refresh) return null
  try {
    const pair = await auth.refresh(deps, refresh)
    startSession(cookie, pair, deps, secure)
    return await auth.authenticate(deps.store, deps.tokens, pair.access_token)
  } catch (error) {
    if (!(error instanceof DomainError)) throw error
    return null
  }
}

export const sessionUser = async (deps: AppDeps, cookie: Cookies, secure: boolean): Promise<User | null> =>
  (await browserSession(deps, cookie, secure))?.user ?? null
