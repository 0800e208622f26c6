/** Someone gone offline: their last socket closed (or their node went silent) at `lastSeenAt`, ms since the epoch. */
export type Departure = { userId: string; lastSeenAt: number }

/**
 * Who is online, for every node: each node says here when a user's first socket on it opens and
 * their last one on it closes (not every socket: a node's own count is its registry's), and asks
 * every so often who has gone (sweep). In one process, its memory (store.memory.ts); with
 * REDIS_URL, Redis (store.redis.ts), where a node that stops beating is taken for gone.
 */
export type PresenceStore = {
  /** This node's first socket of the user opened: true when that makes them online (they were not, anywhere). */
  arrived(userId: string): Promise<boolean>
  /** This node's last socket of the user closed. */
  left(userId: string): Promise<void>
  /**
   * Says this node is alive, and hands out each departure once, whichever node asks: the users
   * with no socket anywhere for `graceMs`. `lost`: what this node said was forgotten (Redis
   * restarted, or took this node for gone): it says it again with resync().
   */
  sweep(graceMs: number): Promise<{ departed: Departure[]; lost: boolean }>
  /** The users with a socket on this node are exactly these (after `lost`, or a call that failed); those it makes online. */
  resync(userIds: readonly string[]): Promise<string[]>
  /** Which of these users are online. */
  onlineAmong(userIds: readonly string[]): Promise<Set<string>>
}
