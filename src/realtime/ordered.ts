import type { AppDeps } from '../deps'
import { type Change, changesBetween } from '../conversations/changes'
import type { ConversationRecord } from '../conversations/model'
import { inSpan } from '../observability/tracing'
import type { DomainEvent } from '../shared/events'
import { createSequencer } from './sequencer'

/** What one subscriber of this node's ordered events does with them. */
export type OrderedListener = {
  event(event: DomainEvent): void
  /** Whether a socket here follows the conversation: then what the bus lost of it is read again. */
  follows(conversationId: string): boolean
  /** After a bus interruption, once the changes it lost are being read again: other events are to be re-checked. */
  interrupted?(): void
}

export type OrderedEvents = ReturnType<typeof createOrderedEvents>

/**
 * This node's one subscription to the bus, passed on in order to whatever delivers events here
 * (JSON sockets in fanout.ts, the web UI's pages in ui/push.ts): each conversation's changes in
 * event_seq order, each once, gaps read from the database (sequencer.ts), so every subscriber sees
 * the same stream without reading it again.
 */
export function createOrderedEvents(deps: Pick<AppDeps, 'bus' | 'store' | 'logger'>) {
  const listeners = new Set<OrderedListener>()
  /** The conversation an event carried with its change (member_added), until the change is delivered. */
  const records = new WeakMap<Change, ConversationRecord>()

  const sequencer = createSequencer({
    read: (conversationId, after, before, limit) => changesBetween(deps.store, conversationId, after, before, limit),
    deliver(change) {
      const conversation = records.get(change)
      pass(conversation ? { type: 'conversation.changed', change, conversation } : { type: 'conversation.changed', change })
    },
    onError: (error, conversationId) => deps.logger.error({ err: error, conversation_id: conversationId }, 'reading missed changes failed'),
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
    if (event.type === 'conversation.changed') {
      if (event.conversation) records.set(event.change, event.conversation)
      sequencer.accept(event.change)
      return
    }
    if (event.type === 'conversation.check') {
      if (sequencer.position(event.conversationId) !== undefined) void sequencer.deliverUpTo(event.conversationId, Number.MAX_SAFE_INTEGER)
      return
    }
    // In no stream: delivered around it (signals.ts, ui/signals.ts).
    if (event.type === 'typing' || event.type === 'presence') return
    // Where a new conversation stands, before any of its changes is delivered.
    if (event.type === 'conversation.created') sequencer.know(event.conversation.id, event.conversation.lastEventSeq)
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
     * Where a conversation stood (its newest event_seq) when a socket here began to follow it:
     * what comes after it is delivered, gaps filled from there.
     */
    know: sequencer.know,
    position: sequencer.position,
    deliverUpTo: sequencer.deliverUpTo,
    close(): void {
      unsubscribe()
      stopHearingInterruptions()
    },
  }
}
