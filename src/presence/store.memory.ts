import type { Departure, PresenceStore } from './store'

/** Presence when this process is the only node: who has a socket here is who is online. */
export function memoryPresence(): PresenceStore {
  const here = new Set<string>()
  const online = new Set<string>()
  /** When each user's last socket closed, oldest first (a user who leaves again moves to the end). */
  const leaving = new Map<string, number>()

  function arrive(userId: string): boolean {
    here.add(userId)
    leaving.delete(userId)
    if (online.has(userId)) return false
    online.add(userId)
    return true
  }

  return {
    async arrived(userId) {
      return arrive(userId)
    },
    async left(userId) {
      here.delete(userId)
      leaving.delete(userId)
      leaving.set(userId, Date.now())
    },
    async sweep(graceMs) {
      const due = Date.now() - graceMs
      const departed: Departure[] = []
      for (const [userId, at] of leaving) {
        if (at > due) break
        leaving.delete(userId)
        if (!here.has(userId) && online.delete(userId)) departed.push({ userId, lastSeenAt: at })
      }
      return { departed, lost: false }
    },
    async resync(userIds) {
      return userIds.filter(arrive)
    },
    async onlineAmong(userIds) {
      return new Set(userIds.filter((id) => online.has(id)))
    },
  }
}
