import type { AppDeps } from '../deps'
import type { DomainEvent } from '../shared/events'
import { frame } from './frames'
import type { Registry } from './registry'
import { conversationTopic } from './topics'

type Typing = Extract<DomainEvent, { type: 'typing' }>
type Presence = Extract<DomainEvent, { type: 'presence' }>

/**
 * Typing and presence to this node's JSON sockets, straight from the bus: they are in no change
 * stream (no event_seq), so they go around the sequencer, and a node that missed one has missed
 * nothing lasting. The web UI's sockets get theirs rendered (ui/signals.ts).
 */
export function deliverSignals(deps: Pick<AppDeps, 'bus' | 'logger'>, registry: Pick<Registry, 'ofUser' | 'publish' | 'send'>) {
  /**
   * To the conversation's topic, which every member's JSON socket follows, but for the typist's
   * own: those here are taken off the topic for the publish, which picks its readers at once, and
   * put back on it. No read of who the members are.
   */
  function typing({ conversationId, user }: Typing): void {
    const topic = conversationTopic(conversationId)
    const own = [...(registry.ofUser(user.id) ?? [])].filter((connection) => connection.ws.isSubscribed(topic))
    for (const connection of own) connection.ws.unsubscribe(topic)
    try {
      registry.publish(topic, frame({ type: 'typing', conversation_id: conversationId, user_id: user.id }))
    } finally {
      // A socket the publish disconnected (a slow reader) is left as it is.
      for (const connection of own) if (connection.ws.readyState === 1) connection.ws.subscribe(topic)
    }
  }

  /** One frame to each socket here of each watcher, however many conversations they share. */
  function presence({ userId, online, watchers }: Presence): void {
    let data: string | undefined
    for (const watcher of watchers) {
      for (const connection of registry.ofUser(watcher) ?? []) {
        if (connection.format !== 'json') continue
        data ??= frame({ type: 'presence', user_id: userId, online })
        registry.send(connection, data)
      }
    }
  }

  return deps.bus.subscribe((event) => {
    try {
      if (event.type === 'typing') typing(event)
      else if (event.type === 'presence') presence(event)
    } catch (error) {
      deps.logger.error({ err: error, event_type: event.type }, 'delivering a signal failed')
    }
  })
}
