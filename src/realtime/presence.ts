import type { AppDeps } from '../deps'
import * as presence from '../presence/service'
import type { Registry } from './registry'

/** How often a node sweeps (and, with Redis, beats): at most every second, twice within the grace. */
const sweepInterval = (graceSeconds: number): number => Math.min(1000, Math.max(250, (graceSeconds * 1000) / 2))

/**
 * This node's part in presence: a user's first socket here and their last one (the registry's
 * count, not every socket) are told to the presence store, and every sweepInterval() the node
 * sweeps: those gone for the grace are announced offline by whichever node finds them. What the
 * store could not be told (Redis was down), or forgot (Redis restarted, or took this node for
 * gone), is said again whole (resync) at the next sweep that works.
 */
export function trackPresence(deps: AppDeps, registry: Pick<Registry, 'watch' | 'users'>) {
  /** The store may not know who is here: a call to it failed since the last resync. */
  let unsure = false
  /** Sweeps are failing: said once, and again once they work. */
  let failing = false
  let sweeping = false
  let started = false
  let timer: Timer | undefined

  // Watched for as long as the registry lives: the sockets a shutdown closes still say they left.
  registry.watch((userId, here) => {
    ;(here ? presence.arrived(deps, userId) : presence.left(deps, userId)).catch((error) => {
      unsure = true
      deps.logger.warn({ err: error, user_id: userId }, here ? 'presence: an arrival could not be recorded' : 'presence: a departure could not be recorded')
    })
  })

  async function sweepOnce(): Promise<void> {
    if (sweeping) return
    sweeping = true
    try {
      const lost = await presence.sweep(deps)
      if (lost || unsure) {
        unsure = false
        const here = [...registry.users()].map(([userId]) => userId)
        await presence.resync(deps, here)
        // Not at start-up: the first sweep always finds the store new to this node.
        if (started) deps.logger.info({ users: here.length, forgotten: lost }, 'presence: said again who is here')
      }
      started = true
      if (failing) deps.logger.info('presence: sweeping again')
      failing = false
    } catch (error) {
      if (!failing) deps.logger.warn({ err: error }, 'presence: sweep failed; trying again every sweep')
      failing = true
      // Whatever a resync did not finish is done again.
      unsure = true
    } finally {
      sweeping = false
    }
  }

  return {
    /** Once the server listens: the first sweep says this node is here. */
    start(): void {
      if (timer) return
      timer = setInterval(() => void sweepOnce(), sweepInterval(deps.config.presenceGraceSeconds))
      timer.unref()
      void sweepOnce()
    },
    stop(): void {
      clearInterval(timer)
      timer = undefined
    },
  }
}
