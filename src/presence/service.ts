import type { Config } from '../config'
import * as conversations from '../conversations/service'
import type { Store } from '../db/store'
import type { Limits } from '../limits/counters'
import type { EventSink } from '../shared/events'
import { perKey } from '../shared/memo'
import type { User } from '../users/model'
import * as users from '../users/service'
import type { PresenceStore } from './store'

export type Deps = { store: Store; bus: EventSink; presence: PresenceStore; limits: Limits; config: Pick<Config, 'presenceGraceSeconds'> }

/** At most one typing signal of a user in a conversation is passed on in this many seconds; the rest are dropped. */
export const TYPING_INTERVAL_SECONDS = 2

/** A fixed window of one per user and conversation, counted where rate limits are: for every node, with Redis. */
const typingWindow = perKey((limits: Limits) => limits.window('typing', 1, TYPING_INTERVAL_SECONDS))

/**
 * The actor is typing in a conversation: its other members' sockets are told (realtime/signals.ts,
 * ui/signals.ts), at most once every TYPING_INTERVAL_SECONDS per user and conversation; the rest is
 * dropped without a word. Not stored, and in no change stream: a client that missed it has missed
 * nothing lasting. 404 / 403 as for anything else of a conversation the actor is not in.
 */
export async function typing(deps: Pick<Deps, 'store' | 'bus' | 'limits'>, actor: User, conversationId: string): Promise<void> {
  await conversations.requireMember(deps.store, actor, conversationId)
  const passed = await typingWindow(deps.limits)
    .consume(`${actor.id}:${conversationId}`)
    .then(
      () => true,
      (rejection: unknown) => {
        // A refusal is the limiter's answer (not an Error): the window's one has been passed on.
        if (rejection instanceof Error) throw rejection
        return false
      },
    )
  if (passed) deps.bus.publish({ type: 'typing', conversationId, user: actor })
}

/**
 * Tells everyone who shares a conversation with the user that they came online or went offline:
 * one read of who they are, however many conversations the user is in, one event for every node.
 */
async function announce(deps: Pick<Deps, 'store' | 'bus'>, userId: string, online: boolean): Promise<void> {
  const watchers = await conversations.coMembersOf(deps.store, userId)
  if (watchers.length > 0) deps.bus.publish({ type: 'presence', userId, online, watchers })
}

/** The user's first socket on this node opened: announced online if that makes them so, anywhere. */
export async function arrived(deps: Deps, userId: string): Promise<void> {
  if (await deps.presence.arrived(userId)) await announce(deps, userId, true)
}

/** The user's last socket on this node closed: offline once none is open anywhere for the grace (sweep). */
export function left(deps: Deps, userId: string): Promise<void> {
  return deps.presence.left(userId)
}

/**
 * Every node calls this every so often: those with no socket open anywhere for the grace
 * (PRESENCE_GRACE_SECONDS) are offline, each found by one node, which records when they were last
 * seen and announces it. True when this node's users must be said again (resync).
 */
export async function sweep(deps: Deps): Promise<boolean> {
  const { departed, lost } = await deps.presence.sweep(deps.config.presenceGraceSeconds * 1000)
  for (const { userId, lastSeenAt } of departed) {
    await users.setLastSeen(deps.store, userId, lastSeenAt)
    await announce(deps, userId, false)
  }
  return lost
}

/** The users with a socket on this node, said again; those it makes online are announced. */
export async function resync(deps: Deps, userIds: readonly string[]): Promise<void> {
  for (const userId of await deps.presence.resync(userIds)) await announce(deps, userId, true)
}
