/** A user as stored, without the password hash. */
export type UserRecord = { id: string; username: string; fullName: string | null }

/** A user as stored, with the password hash: only for the login check. */
type Credentials = UserRecord & { passwordHash: string }

type NewUser = Credentials & { createdAt: number }

/** Every query of the users context; one implementation per engine (store.sqlite.ts, store.postgres.ts). */
export type UserStore = {
  /** Stores the user, or answers 'taken' when the username (in any case) already exists. */
  create(user: NewUser): Promise<UserRecord | 'taken'>
  byId(id: string): Promise<UserRecord | undefined>
  /** The user whose username equals this one in any case. */
  credentialsByUsername(username: string): Promise<Credentials | undefined>
  byIds(ids: readonly string[]): Promise<UserRecord[]>
  /** Users whose lower-cased username is one of these (already lower-cased). */
  byLowerUsernames(usernames: readonly string[]): Promise<UserRecord[]>
  /** Everyone except this user, by lower-cased username, with when each was last seen (ms since the epoch, or null). */
  everyoneExcept(id: string): Promise<Array<UserRecord & { lastSeenAt: number | null }>>
  /** Records when a user went offline: their last socket closed (ms since the epoch). */
  setLastSeen(id: string, at: number): Promise<void>
}
