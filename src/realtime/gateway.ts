import type { Server } from 'bun'
import type { AppDeps } from '../deps'
import { createFanout } from './fanout'
import { createOrderedEvents } from './ordered'
import { trackPresence } from './presence'
import { createProtocol } from './protocol'
import { createRegistry } from './registry'
import { createResume } from './resume'
import { deliverSignals } from './signals'
import { upgradeRoutes } from './upgrade'

const EXPIRY_CHECK_MS = 1000

/**
 * Each process's WebSocket endpoint, in parts: the upgrade and who is calling (upgrade.ts,
 * credentials.ts), the sockets it holds and every frame sent to them (registry.ts), the protocol
 * a socket speaks (protocol.ts), and the node's events, in order (ordered.ts), delivered to JSON
 * sockets (fanout.ts); typing and presence, around the ordered events (signals.ts, presence.ts).
 * Other subscribers of the ordered events, such as the web UI's pushes
 * (ui/push.ts), take `ordered` and `registry`.
 */
export function createGateway(deps: AppDeps) {
  const registry = createRegistry(deps)
  const ordered = createOrderedEvents(deps)
  const fanout = createFanout(deps, registry, ordered)
  const protocol = createProtocol(deps, registry, fanout, createResume(deps, registry, ordered))
  const stopSignals = deliverSignals(deps, registry)
  const presence = trackPresence(deps, registry)
  let expiryChecks: Timer | undefined

  return {
    routes: upgradeRoutes(deps, protocol.events),
    registry,
    ordered,
    /** Called once the server listens: server.publish reaches every subscriber, the sender included. */
    attach(listening: Server<unknown>) {
      registry.attach(listening)
      // One timer for every socket: a timer each would cost each socket memory (bench/).
      expiryChecks ??= setInterval(protocol.closeExpired, EXPIRY_CHECK_MS).unref()
      presence.start()
    },
    close() {
      fanout.close()
      ordered.close()
      stopSignals()
      presence.stop()
      clearInterval(expiryChecks)
      expiryChecks = undefined
    },
  }
}
