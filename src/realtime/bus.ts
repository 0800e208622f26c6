import type { DomainEvent, EventSink } from '../shared/events'

/**
 * Hears each event once, with where it was committed: `here` (this process) or `elsewhere` (another
 * node, over the bus): what each node counts of its own (metrics) must not count the others'.
 */
type Listener = (event: DomainEvent, origin: 'here' | 'elsewhere') => void

/**
 * The fan-out seam. Services publish domain events after commit; every gateway (one per process)
 * subscribes and delivers to its own sockets. In one process this is a direct call; a Redis
 * implementation of the same interface carries events between processes.
 */
export interface Bus extends EventSink {
  subscribe(listener: Listener): () => void
  /**
   * Calls `listener` whenever events of other processes may have been lost (the bus between them
   * was interrupted, and is back): whatever must not miss them re-reads the database. Never, in
   * one process.
   */
  onInterruption(listener: () => void): () => void
}

export function createLocalBus(onListenerError: (error: unknown) => void = () => {}): Bus {
  const listeners = new Set<Listener>()
  return {
    publish(event) {
      for (const listener of listeners) {
        // The event is already committed: a failing listener must not fail the sender's request.
        try {
          listener(event, 'here')
        } catch (error) {
          onListenerError(error)
        }
      }
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    onInterruption: () => () => {},
  }
}
