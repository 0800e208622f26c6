import type { Config } from '../config'
import type { Store } from '../db/store'
import { rememberBounded } from '../shared/bounded'
import { DomainError, Unauthorized } from '../shared/errors'
import type { EventSink } from '../shared/events'
import { newId } from '../shared/ids'
import { perKey } from '../shared/memo'
import { now } from '../shared/time'
import { validator } from '../shared/validation'
import type { User } from '../users/model'
import * as users from '../users/service'
import { Login, Signup } from './model'
import { dummyPasswordHash, hashPassword, verifyPassword } from './passwords'
import type { AuthThrottle } from './throttle'
import type { Issue, SessionClaims, TokenKind, TokenPair, Tokens, VerifiedToken } from './tokens'

export type Deps = { store: Store; tokens: Tokens; bus: EventSink; authThrottle: AuthThrottle; config: Pick<Config, 'refreshReuseGraceSeconds'> }

/** Who is calling, and from which login session (one per login; logout ends it). */
export type Authenticated = { user: User; sessionId: string }

const checkSignup = validator(Signup)
const checkLogin = validator(Login)

/** A new account. `ip` is the client's address: signups are counted per address (auth/throttle.ts). */
export async function signup(deps: Pick<Deps, 'store' | 'authThrottle'>, input: unknown, ip: string): Promise<User> {
  const { username, password, full_name } = checkSignup(input)
  const fullName = users.checkFullName(full_name)
  await deps.authThrottle.signup(ip)
  return users.create(deps.store, { username, fullName, passwordHash: await hashPassword(password) })
}

const invalidCredentials = () => new Unauthorized('Invalid username or password', 'invalid_credentials')
const sessionEnded = () => new Unauthorized('This session has ended: log in again', 'session_ended')

/** A new login session for a user, and its first token pair. */
export async function openSession(deps: Pick<Deps, 'store' | 'tokens'>, userId: string): Promise<TokenPair> {
  const version = await deps.store.auth.tokenVersion(userId)
  if (version === undefined) throw new Unauthorized('Account no longer exists', 'invalid_token')
  const sessionId = newId()
  const issue = { refreshJti: newId(), issuedAt: now() }
  await deps.store.auth.openSession({ id: sessionId, userId, currentJti: issue.refreshJti, createdAt: issue.issuedAt })
  return deps.tokens.issuePair({ userId, sessionId, version }, issue)
}

/**
 * Unknown user and wrong password fail alike, in status, body and time spent hashing. A failure
 * counts against the client's address (`ip`) and the username; once either has failed too often,
 * every attempt is refused (429) until its window ends (auth/throttle.ts). A success counts nothing.
 */
export async function login(deps: Pick<Deps, 'store' | 'tokens' | 'authThrottle'>, input: unknown, ip: string): Promise<TokenPair> {
  const { username, password } = checkLogin(input)
  const attempt = await deps.authThrottle.loginAttempt(ip, username)
  let outcome: 'failed' | 'succeeded' | 'not-tried' = 'not-tried'
  try {
    const row = await users.credentialsByUsername(deps.store, username)
    const ok = await verifyPassword(password, row?.passwordHash ?? (await dummyPasswordHash()))
    if (!row || !ok) {
      outcome = 'failed'
      throw invalidCredentials()
    }
    const pair = await openSession(deps, row.id)
    outcome = 'succeeded'
    return pair
  } finally {
    await attempt.settle(outcome)
  }
}

/** The session a token names, if it is still open for that user at that token version. */
async function liveSession(store: Store, claims: SessionClaims) {
  const row = await store.auth.session(claims.sessionId, claims.userId)
  if (!row || row.revokedAt !== null || row.user.tokenVersion !== claims.version) return null
  return row
}

/** A session found open, and until when (performance.now()) that finding stands. */
type OpenSession = { user: User; version: number; until: number }

/**
 * Sessions found open, per store, so that a client's every request does not read the same two
 * rows again (README, Performance). Every change that ends a session is made here (endSession,
 * logoutAll), and forgets its entries as it makes its UPDATE: a logout takes effect at the next
 * request in this process. Other processes on the same database hear of it on the bus
 * (`session.ended`, see forgetEndedSessions) and forget theirs; and since an event can be lost
 * (pub/sub is at-most-once, and without Redis nodes share no bus at all), no finding stands longer
 * than SESSION_MEMORY_MS anywhere. A read that was under way while a session ended may have seen
 * it open, so what it found is remembered only if no session ended meanwhile (`endings`). A
 * refresh always reads the row. Whoever adds another way to end a session, or to edit a user's
 * name, must forget the entries too. Bounded: the oldest entry goes first.
 */
const openSessions = perKey((_: Store) => ({ known: new Map<string, OpenSession>(), endings: 0 }))
const MAX_OPEN_SESSIONS = 10_000
/** How long a session found open is believed without reading it again, on any node. */
export const SESSION_MEMORY_MS = 5_000

async function openSessionFor(store: Store, claims: SessionClaims): Promise<OpenSession | null> {
  const cache = openSessions(store)
  const cached = cache.known.get(claims.sessionId)
  if (cached !== undefined && cached.user.id === claims.userId && cached.version === claims.version && performance.now() < cached.until) return cached
  const endings = cache.endings
  const row = await liveSession(store, claims)
  if (!row) return null
  // Frozen: every request of the session is handed this same User.
  const found = { user: Object.freeze(users.toUser(row.user)), version: row.user.tokenVersion, until: performance.now() + SESSION_MEMORY_MS }
  if (cache.endings === endings) rememberBounded(cache.known, claims.sessionId, found, MAX_OPEN_SESSIONS)
  return found
}

function forgetSessions(store: Store, ended: { sessionId: string } | { userId: string }): void {
  const cache = openSessions(store)
  cache.endings++
  if ('sessionId' in ended) cache.known.delete(ended.sessionId)
  else for (const [sessionId, { user }] of cache.known) if (user.id === ended.userId) cache.known.delete(sessionId)
}

/** Whether a session is still open (for sockets, which hold a session past its requests). */
export async function isSessionOpen(store: Store, userId: string, sessionId: string): Promise<boolean> {
  const row = await store.auth.session(sessionId, userId)
  return row !== undefined && row.revokedAt === null
}

/** A session (or all of a user's: sessionId null) ended, here or on another node: forget it. */
export function forgetEndedSessions(store: Store, ended: { userId: string; sessionId: string | null }): void {
  forgetSessions(store, ended.sessionId === null ? { userId: ended.userId } : { sessionId: ended.sessionId })
}

async function endSession(deps: Pick<Deps, 'store' | 'bus'>, userId: string, sessionId: string): Promise<void> {
  forgetSessions(deps.store, { sessionId })
  await deps.store.auth.endSession(sessionId, now())
  forgetSessions(deps.store, { sessionId })
  deps.bus.publish({ type: 'session.ended', userId, sessionId })
}

/**
 * What a refresh token's session would do with it: exchange it ('current'); answer again with the
 * pair that replaced it ('replaced': it is the token replaced last, within the reuse grace); take
 * it as copied ('stale'); or nothing, the session having ended (null).
 */
type Standing = { kind: 'current' } | { kind: 'replaced'; by: Issue } | { kind: 'stale' } | null

async function standingOf(deps: Pick<Deps, 'store' | 'config'>, claims: VerifiedToken): Promise<Standing> {
  const row = await liveSession(deps.store, claims)
  if (!row) return null
  if (row.currentJti === claims.jti) return { kind: 'current' }
  const graceMs = deps.config.refreshReuseGraceSeconds * 1000
  if (graceMs > 0 && row.previousJti === claims.jti && row.rotatedAt !== null && now() - row.rotatedAt < graceMs) {
    return { kind: 'replaced', by: { refreshJti: row.currentJti, issuedAt: row.rotatedAt } }
  }
  return { kind: 'stale' }
}

/**
 * A new pair for a refresh token, which is used up: each session exchanges only its latest refresh
 * token. The one it just replaced is answered again, with the very pair its exchange gave, for
 * REFRESH_REUSE_GRACE_SECONDS: two tabs that refresh at once with the same cookie both stay signed
 * in (Auth0 and Okta allow the same). Presenting any older one, or that one after the grace, means
 * it was copied, so the whole session ends, the latest token included.
 */
export async function refresh(deps: Pick<Deps, 'store' | 'tokens' | 'bus' | 'config'>, refreshToken: string): Promise<TokenPair> {
  const claims = await deps.tokens.verify(refreshToken, 'refresh')
  let standing = await standingOf(deps, claims)
  if (standing?.kind === 'current') {
    const issue = { refreshJti: newId(), issuedAt: now() }
    if (await deps.store.auth.rotate(claims.sessionId, claims.jti, { jti: issue.refreshJti, at: issue.issuedAt })) return deps.tokens.issuePair(claims, issue)
    // Another request (here or on another process) rotated it between the read and the update.
    standing = await standingOf(deps, claims)
  }
  if (standing === null) throw sessionEnded()
  if (standing.kind === 'replaced') return deps.tokens.issuePair(claims, standing.by)
  await endSession(deps, claims.userId, claims.sessionId)
  throw new Unauthorized('This refresh token was already used: the session has been ended', 'token_reused')
}

/**
 * The user whose open session a token belongs to, or null: an access token as authenticate takes
 * it, a refresh token only while its session would exchange it (or answer it within the grace).
 * For counting a request against someone (the rate limit), never for letting it in.
 */
export async function openSessionUserId(deps: Pick<Deps, 'store' | 'tokens' | 'config'>, token: string, kind: TokenKind): Promise<string | null> {
  try {
    if (kind === 'access') return (await authenticate(deps.store, deps.tokens, token)).user.id
    const claims = await deps.tokens.verify(token, 'refresh')
    const standing = await standingOf(deps, claims)
    return standing?.kind === 'current' || standing?.kind === 'replaced' ? claims.userId : null
  } catch (error) {
    if (error instanceof DomainError) return null
    throw error
  }
}

/** The caller an access token belongs to, while its session is open and its version current. */
export async function authenticate(store: Store, tokens: Tokens, accessToken: string): Promise<Authenticated> {
  const claims = await tokens.verify(accessToken, 'access')
  const session = await openSessionFor(store, claims)
  if (!session) throw sessionEnded()
  return { user: session.user, sessionId: claims.sessionId }
}

/** Ends the caller's session: its tokens stop working and its sockets are closed. */
export function logout(deps: Pick<Deps, 'store' | 'bus'>, caller: Authenticated): Promise<void> {
  return endSession(deps, caller.user.id, caller.sessionId)
}

/** Ends every session of the user, on every device: all tokens issued so far stop working. */
export async function logoutAll(deps: Pick<Deps, 'store' | 'bus'>, user: User): Promise<void> {
  forgetSessions(deps.store, { userId: user.id })
  await deps.store.auth.endAllSessions(user.id, now())
  forgetSessions(deps.store, { userId: user.id })
  deps.bus.publish({ type: 'session.ended', userId: user.id, sessionId: null })
}
