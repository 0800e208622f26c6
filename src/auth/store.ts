import type { UserRecord } from '../users/store'

/** A login session as the token checks read it, with its user. */
type SessionState = {
  user: UserRecord & { tokenVersion: number }
  revokedAt: number | null
  currentJti: string
  previousJti: string | null
  rotatedAt: number | null
}

/** Every query of the auth context (login sessions and token versions); one implementation per engine. */
export type AuthStore = {
  /** The user's token version, or undefined when the user does not exist. */
  tokenVersion(userId: string): Promise<number | undefined>
  openSession(session: { id: string; userId: string; currentJti: string; createdAt: number }): Promise<void>
  /** The session with this id, if it belongs to this user. */
  session(sessionId: string, userId: string): Promise<SessionState | undefined>
  /** Replaces the session's current refresh token if it is still `fromJti` and the session is open; whether it did. */
  rotate(sessionId: string, fromJti: string, to: { jti: string; at: number }): Promise<boolean>
  /** Ends one session (if still open). */
  endSession(sessionId: string, at: number): Promise<void>
  /** Raises the user's token version and ends every open session of theirs, in one transaction. */
  endAllSessions(userId: string, at: number): Promise<void>
}
