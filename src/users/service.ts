import type { Store } from '../db/store'
import { Conflict, Invalid } from '../shared/errors'
import { newId } from '../shared/ids'
import type { PresenceStore } from '../presence/store'
import { iso, now } from '../shared/time'
import { checkMaxCharacters, unstorableText } from '../shared/validation'
import { MAX_FULL_NAME_CHARACTERS, type ListedUser, type User } from './model'
import type { UserRecord } from './store'

/** NUL and the other C0 and C1 controls, and the line and paragraph separators: a name is one line of text. */
const CONTROLS = /[\p{Cc}\u2028\u2029]/u
/** Bidi embeddings, overrides, isolates and marks: invisible, they reorder the text shown around them. */
const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/u
const UNSHOWABLE = new RegExp(`${CONTROLS.source}|${BIDI_CONTROLS.source}`, 'gu')
/**
 * A character that shows: not whitespace, a combining mark, a control or format character (the
 * zero-width ones, U+FEFF), a default-ignorable one (Hangul fillers, variation selectors) or the
 * blank braille pattern.
 */
const VISIBLE = /[^\s\p{M}\p{Cc}\p{Cf}\p{Default_Ignorable_Code_Point}\u2800]/u

/**
 * The one rule for a full name, given at signup by the API and the web UI alike: trimmed; refused
 * (422, field full_name) if it holds a control or bidi control character, since no name needs
 * one and the sender can fix it; none (null), like a blank one, if nothing in it shows, so that
 * the username is shown instead of an empty-looking name.
 */
export function checkFullName(raw: string | null | undefined): string | null {
  const name = raw?.trim() ?? ''
  if (CONTROLS.test(name)) throw Invalid.field('full_name', 'must not contain control characters such as NUL, tabs or line breaks')
  if (BIDI_CONTROLS.test(name)) throw Invalid.field('full_name', 'must not contain invisible characters that change the direction of text')
  checkMaxCharacters('full_name', name, MAX_FULL_NAME_CHARACTERS)
  return VISIBLE.test(name) ? name : null
}

/**
 * A stored full name as it may be shown. Names stored before checkFullName refused those
 * characters lose them here, and one with nothing visible left is none, so no reader is shown
 * reordered or invisible names, whichever server version stored them.
 */
function shownFullName(stored: string | null): string | null {
  if (stored === null) return null
  const name = CONTROLS.test(stored) || BIDI_CONTROLS.test(stored) ? stored.replace(UNSHOWABLE, '').trim() : stored
  return VISIBLE.test(name) ? name : null
}

export const toUser = (row: UserRecord): User => ({
  id: row.id,
  username: row.username,
  full_name: shownFullName(row.fullName),
})

/** A name to show for a user: the full name when they gave one, else the username. */
export const displayName = (user: User): string => user.full_name || user.username

/** Stores a new user. Usernames are unique regardless of case. */
export async function create(store: Store, input: { username: string; passwordHash: string; fullName: string | null }): Promise<User> {
  const created = await store.users.create({ id: newId(), username: input.username, fullName: input.fullName, passwordHash: input.passwordHash, createdAt: now() })
  if (created === 'taken') throw new Conflict(`Username "${input.username}" is already taken`)
  return toUser(created)
}

export async function byId(store: Store, id: string): Promise<User | undefined> {
  const row = await store.users.byId(id)
  return row && toUser(row)
}

/** The stored row, hash included: only for the login check. */
export function credentialsByUsername(store: Store, username: string) {
  return store.users.credentialsByUsername(username)
}

export async function byIds(store: Store, ids: readonly string[]): Promise<User[]> {
  return (await store.users.byIds(ids)).map(toUser)
}

/** Users by username (any case), and the names that match nobody. */
export async function byUsernames(store: Store, usernames: readonly string[]): Promise<{ found: User[]; unknown: string[] }> {
  // A name no engine can store matches nobody (usernames are ASCII letters, digits and _ . -).
  const wanted = [...new Set(usernames.filter((u) => unstorableText(u) === undefined).map((u) => u.toLowerCase()))]
  if (wanted.length === 0) return { found: [], unknown: [...usernames] }
  const found = (await store.users.byLowerUsernames(wanted)).map(toUser)
  const known = new Set(found.map((u) => u.username.toLowerCase()))
  return { found, unknown: usernames.filter((u) => !known.has(u.toLowerCase())) }
}

/** Everyone except the caller, by username, each with whether they are online and when they were last seen. */
export async function listExcept(deps: { store: Store; presence: PresenceStore }, actor: User): Promise<ListedUser[]> {
  const rows = await deps.store.users.everyoneExcept(actor.id)
  const online = await deps.presence.onlineAmong(rows.map((row) => row.id))
  return rows.map((row) => ({ ...toUser(row), online: online.has(row.id), last_seen_at: row.lastSeenAt === null ? null : iso(row.lastSeenAt) }))
}

/** Records when the user went offline (their last socket closed, a grace ago). */
export function setLastSeen(store: Store, userId: string, at: number): Promise<void> {
  return store.users.setLastSeen(userId, at)
}
