import type { AppDeps } from '../deps'
import * as messages from '../messages/service'
import { inSpan } from '../observability/tracing'
import type { DomainEvent } from '../shared/events'
import { createSequencer } from './sequencer'

/** What one subscriber of this node's ordered events does with them. */
export type OrderedListener = {
  event(event: DomainEvent): void
  /** Whether a socket here follows the conversation: then what the bus lost of it is read again. */
  follows(conversationId: string): boolean
  /** After a bus interruption, once the messages it lost are being read again: events that are not messages are to be re-checked. */
  interrupted?(): void
}

export type OrderedEvents = ReturnType<typeof createOrderedEvents>

/**
 * This node's one subscription to the bus, passed on in order to whatever delivers events here
 * (JSON sockets in fanout.ts, the web UI's pages in ui/push.ts): each conversation's messages in
 * seq order, each once, gaps read from the database (sequencer.ts), so every subscriber sees the
 * same stream without reading it again.
 */
export function createOrderedEvents(deps: Pick<AppDeps, 'bus' | 'store' | 'logger'>) {
  const listeners = new Set<OrderedListener>()

  const sequencer = createSequencer({
    read: (conversationId, after, before, limit) => messages.between(deps.store, conversationId, after, before, limit),
    deliver(message) {
      pass({ type: 'message.created', message })
    },
    onError: (error, conversationId) => deps.logger.error({ err: error, conversation_id: conversationId }, 'reading missed messages failed'),
  })

  function pass(event: DomainEvent): void {
    for (const listener of listeners) {
      try {
        listener.event(event)
      } catch (error) {
        deps.logger.error({ err: error, event_type: event.type }, 'delivering an event failed')
      }
    }
  }

  function heard(event: DomainEvent): void {
    if (event.type === 'message.created') {
      sequencer.accept(event.message)
      return
    }
    // Where a new conversation stands, before any of its messages is delivered.
    if (event.type === 'conversation.created') sequencer.know(event.conversation.id, event.conversation.lastSeq)
    pass(event)
  }

  const unsubscribe = deps.bus.subscribe((event) => inSpan('fanout', { 'event.type': event.type }, () => heard(event)))

  const stopHearingInterruptions = deps.bus.onInterruption(() => {
    deps.logger.warn('the bus was interrupted: reading what it may have lost from the database')
    // Only conversations someone here follows: reading every one ever seen would be a burst of reads.
    sequencer.catchUp((id) => {
      for (const listener of listeners) if (listener.follows(id)) return true
      return false
    })
    for (const listener of listeners) listener.interrupted?.()
  })

  return {
    subscribe(listener: OrderedListener): () => void {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    /**
     * Where a conversation stood (its newest seq) when a socket here began to follow it: what
     * comes after it is delivered, gaps filled from there.
     */
    know: sequencer.know,
    close(): void {
      unsubscribe()
      stopHearingInterruptions()
    },
  }
}
