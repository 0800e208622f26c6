import { and, eq, isNull, sql } from 'drizzle-orm'
import type { Config } from '../config'
import { perDatabase, type Db } from '../db/client'
import { rememberBounded } from '../shared/bounded'
import { sessions, users as usersTable } from '../db/schema'
import { DomainError, Unauthorized } from '../shared/errors'
import type { EventSink } from '../shared/events'
import { newId } from '../shared/ids'
import { now } from '../shared/time'
import { validator } from '../shared/validation'
import type { User } from '../users/model'
import * as users from '../users/service'
import { Login, Signup } from './model'
import { dummyPasswordHash, hashPassword, verifyPassword } from './passwords'
import type { AuthThrottle } from './throttle'
import type { Issue, SessionClaims, TokenKind, TokenPair, Tokens, VerifiedToken } from './tokens'

export type Deps = { db: Db; tokens: Tokens; bus: EventSink; authThrottle: AuthThrottle; config: Pick<Config, 'refreshReuseGraceSeconds'> }

/** Who is calling, and from which login session (one per login; logout ends it). */
export type Authenticated = { user: User; sessionId: string }

const checkSignup = validator(Signup)
const checkLogin = validator(Login)

/** A new account. `ip` is the client's address: signups are counted per address (auth/throttle.ts). */
export async function signup(deps: Pick<Deps, 'db' | 'authThrottle'>, input: unknown, ip: string): Promise<User> {
  const { username, password, full_name } = checkSignup(input)
  const fullName = users.checkFullName(full_name)
  await deps.authThrottle.signup(ip)
  return users.create(deps.db, { username, fullName, passwordHash: await hashPassword(password) })
}

const invalidCredentials = () => new Unauthorized('Invalid username or password', 'invalid_credentials')
const sessionEnded = () => new Unauthorized('This session has ended: log in again', 'session_ended')

/** A new login session for a user, and its first token pair. */
export function openSession(deps: Pick<Deps, 'db' | 'tokens'>, userId: string): Promise<TokenPair> {
  const user = deps.db.select({ version: usersTable.tokenVersion }).from(usersTable).where(eq(usersTable.id, userId)).get()
  if (!user) throw new Unauthorized('Account no longer exists', 'invalid_token')
  const sessionId = newId()
  const issue = { refreshJti: newId(), issuedAt: now() }
  deps.db.insert(sessions).values({ id: sessionId, userId, currentJti: issue.refreshJti, createdAt: issue.issuedAt }).run()
  return deps.tokens.issuePair({ userId, sessionId, version: user.version }, issue)
}

/**
 * Unknown user and wrong password fail alike, in status, body and time spent hashing. A failure
 * counts against the client's address (`ip`) and the username; once either has failed too often,
 * every attempt is refused (429) until its window ends (auth/throttle.ts). A success counts nothing.
 */
export async function login(deps: Pick<Deps, 'db' | 'tokens' | 'authThrottle'>, input: unknown, ip: string): Promise<TokenPair> {
  const { username, password } = checkLogin(input)
  const attempt = await deps.authThrottle.loginAttempt(ip, username)
  let outcome: 'failed' | 'succeeded' | 'not-tried' = 'not-tried'
  try {
    const row = users.credentialsByUsername(deps.db, username)
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

const sessionLookup = perDatabase((db) =>
  db
    .select({
      user: { id: usersTable.id, username: usersTable.username, fullName: usersTable.fullName, tokenVersion: usersTable.tokenVersion },
      revokedAt: sessions.revokedAt,
      currentJti: sessions.currentJti,
      previousJti: sessions.previousJti,
      rotatedAt: sessions.rotatedAt,
    })
    .from(sessions)
    .innerJoin(usersTable, eq(usersTable.id, sessions.userId))
    .where(and(eq(sessions.id, sql.placeholder('sessionId')), eq(sessions.userId, sql.placeholder('userId'))))
    .prepare(),
)

/** The session a token names, if it is still open for that user at that token version. */
function liveSession(db: Db, claims: SessionClaims) {
  const row = sessionLookup(db).get({ sessionId: claims.sessionId, userId: claims.userId })
  if (!row || row.revokedAt !== null || row.user.tokenVersion !== claims.version) return null
  return row
}

type OpenSession = { user: User; version: number }

/**
 * Sessions found open, per database, so that a client's every request does not read the same two
 * rows again: under a write load that read took ~15 µs, and skipping it sent half again as many
 * messages a second over POST /messages (README, Performance). Sound because every change that
 * ends a session is made here, by this process (endSessionRow, logoutAll), and forgets its
 * entries in the same synchronous step as its UPDATE: a logout still takes effect at the next
 * request. A refresh always reads the row. Whoever adds another way to end a session, or to edit a
 * user's name, must forget the entries too; a second process on the same database would need the
 * bus to carry that. Bounded: the oldest entry goes first.
 */
const openSessions = perDatabase(() => new Map<string, OpenSession>())
const MAX_OPEN_SESSIONS = 10_000

function openSessionFor(db: Db, claims: SessionClaims): OpenSession | null {
  const known = openSessions(db)
  const cached = known.get(claims.sessionId)
  if (cached !== undefined && cached.user.id === claims.userId && cached.version === claims.version) return cached
  const row = liveSession(db, claims)
  if (!row) return null
  // Frozen: every request of the session is handed this same User.
  const found = { user: Object.freeze(users.toUser(row.user)), version: row.user.tokenVersion }
  rememberBounded(known, claims.sessionId, found, MAX_OPEN_SESSIONS)
  return found
}

function forgetSessions(db: Db, ended: { sessionId: string } | { userId: string }): void {
  const known = openSessions(db)
  if ('sessionId' in ended) known.delete(ended.sessionId)
  else for (const [sessionId, { user }] of known) if (user.id === ended.userId) known.delete(sessionId)
}

function endSessionRow(deps: Pick<Deps, 'db' | 'bus'>, userId: string, sessionId: string): void {
  deps.db
    .update(sessions)
    .set({ revokedAt: now() })
    .where(and(eq(sessions.id, sessionId), isNull(sessions.revokedAt)))
    .run()
  forgetSessions(deps.db, { sessionId })
  deps.bus.publish({ type: 'session.ended', userId, sessionId })
}

/**
 * What a refresh token's session would do with it: exchange it ('current'); answer again with the
 * pair that replaced it ('replaced': it is the token replaced last, within the reuse grace); take
 * it as copied ('stale'); or nothing, the session having ended (null).
 */
type Standing = { kind: 'current' } | { kind: 'replaced'; by: Issue } | { kind: 'stale' } | null

function standingOf(deps: Pick<Deps, 'db' | 'config'>, claims: VerifiedToken): Standing {
  const row = liveSession(deps.db, claims)
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
export async function refresh(deps: Pick<Deps, 'db' | 'tokens' | 'bus' | 'config'>, refreshToken: string): Promise<TokenPair> {
  const claims = await deps.tokens.verify(refreshToken, 'refresh')
  let standing = standingOf(deps, claims)
  if (standing?.kind === 'current') {
    const issue = { refreshJti: newId(), issuedAt: now() }
    const rotated = deps.db
      .update(sessions)
      .set({ currentJti: issue.refreshJti, previousJti: claims.jti, rotatedAt: issue.issuedAt })
      .where(and(eq(sessions.id, claims.sessionId), eq(sessions.currentJti, claims.jti), isNull(sessions.revokedAt)))
      .returning({ id: sessions.id })
      .all()
    if (rotated.length === 1) return deps.tokens.issuePair(claims, issue)
    // Another process on the same database rotated it between the read and the update.
    standing = standingOf(deps, claims)
  }
  if (standing === null) throw sessionEnded()
  if (standing.kind === 'replaced') return deps.tokens.issuePair(claims, standing.by)
  endSessionRow(deps, claims.userId, claims.sessionId)
  throw new Unauthorized('This refresh token was already used: the session has been ended', 'token_reused')
}

/**
 * The user whose open session a token belongs to, or null: an access token as authenticate takes
 * it, a refresh token only while its session would exchange it (or answer it within the grace).
 * For counting a request against someone (the rate limit), never for letting it in.
 */
export async function openSessionUserId(deps: Pick<Deps, 'db' | 'tokens' | 'config'>, token: string, kind: TokenKind): Promise<string | null> {
  try {
    if (kind === 'access') return (await authenticate(deps.db, deps.tokens, token)).user.id
    const claims = await deps.tokens.verify(token, 'refresh')
    const standing = standingOf(deps, claims)
    return standing?.kind === 'current' || standing?.kind === 'replaced' ? claims.userId : null
  } catch (error) {
    if (error instanceof DomainError) return null
    throw error
  }
}

/** The caller an access token belongs to, while its session is open and its version current. */
export async function authenticate(db: Db, tokens: Tokens, accessToken: string): Promise<Authenticated> {
  const claims = await tokens.verify(accessToken, 'access')
  const session = openSessionFor(db, claims)
  if (!session) throw sessionEnded()
  return { user: session.user, sessionId: claims.sessionId }
}

/** Ends the caller's session: its tokens stop working and its sockets are closed. */
export function logout(deps: Pick<Deps, 'db' | 'bus'>, caller: Authenticated): void {
  endSessionRow(deps, caller.user.id, caller.sessionId)
}

/** Ends every session of the user, on every device: all tokens issued so far stop working. */
export function logoutAll(deps: Pick<Deps, 'db' | 'bus'>, user: User): void {
  deps.db.transaction((tx) => {
    tx.update(usersTable)
      .set({ tokenVersion: sql`${usersTable.tokenVersion} + 1` })
      .where(eq(usersTable.id, user.id))
      .run()
    tx.update(sessions)
      .set({ revokedAt: now() })
      .where(and(eq(sessions.userId, user.id), isNull(sessions.revokedAt)))
      .run()
  })
  forgetSessions(deps.db, { userId: user.id })
  deps.bus.publish({ type: 'session.ended', userId: user.id, sessionId: null })
}
