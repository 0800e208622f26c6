import { isSessionOpen } from '../auth/service'
import { conversationFor, type ConversationRecord } from '../conversations/model'
import * as conversations from '../conversations/service'
import type { AppDeps } from '../deps'
import type { DomainEvent } from '../shared/events'
import type { Connection } from './connection'
import { frame } from './frames'
import type { OrderedEvents } from './ordered'
import type { Registry } from './registry'
import { conversationTopic } from './topics'

export type Fanout = ReturnType<typeof createFanout>

/**
 * Events to this node's JSON sockets: each message to its conversation's topic, a new conversation
 * to its members' sockets (subscribed to it from then on), and an ended session's sockets closed.
 * After a bus interruption, what other nodes announced meanwhile is read again (recheck()).
 */
export function createFanout(deps: Pick<AppDeps, 'store' | 'logger'>, registry: Registry, ordered: OrderedEvents) {
  /** A socket follows a conversation from `lastSeq` on: subscribed to its topic, and its gaps filled from there. */
  function follow(connection: Connection, conversationId: string, lastSeq: number): void {
    ordered.know(conversationId, lastSeq)
    connection.ws.subscribe(conversationTopic(conversationId))
  }

  /** Tells a user's JSON sockets of a conversation, and has them follow it. */
  function announce(connections: Iterable<Connection>, record: ConversationRecord, userId: string): void {
    let data: string | undefined
    for (const connection of connections) {
      if (connection.format !== 'json') continue
      data ??= frame({ type: 'conversation', conversation: conversationFor(record, userId) })
      follow(connection, record.id, record.lastSeq)
      registry.send(connection, data)
    }
  }

  function event(event: DomainEvent): void {
    switch (event.type) {
      case 'message.created':
        registry.publish(conversationTopic(event.message.conversation_id), frame({ type: 'message', message: event.message }))
        return
      case 'conversation.created':
        for (const member of event.conversation.members) announce(registry.ofUser(member.id) ?? [], event.conversation, member.id)
        return
      case 'session.ended':
        // Logged out: the session's sockets (all the user's, for "everywhere") may not stay open.
        for (const connection of registry.ofUser(event.userId) ?? []) {
          if (event.sessionId === null || connection.sessionId === event.sessionId) connection.ws.close(1008, 'Session ended')
        }
        return
    }
  }

  /**
   * After a bus interruption, what other nodes announced meanwhile is read again: a socket is
   * subscribed to (and told of) each conversation of its user it does not know yet, and a socket
   * whose session ended is closed.
   */
  async function recheck(): Promise<void> {
    for (const [userId, connections] of registry.users()) {
      try {
        const positions = await conversations.positionsFor(deps.store, userId)
        for (const connection of connections) {
          if (!(await isSessionOpen(deps.store, userId, connection.sessionId))) {
            connection.ws.close(1008, 'Session ended')
            continue
          }
          if (connection.format !== 'json') continue
          for (const { id } of positions) {
            if (connection.ws.isSubscribed(conversationTopic(id))) continue
            const record = await conversations.recordById(deps.store, id)
            if (record) announce([connection], record, userId)
          }
        }
      } catch (error) {
        deps.logger.error({ err: error, user_id: userId }, 'rechecking sockets after a bus interruption failed')
      }
    }
  }

  const unsubscribe = ordered.subscribe({
    event,
    follows: (conversationId) => registry.subscribers(conversationTopic(conversationId)) > 0,
    interrupted: () => void recheck(),
  })

  return { follow, close: unsubscribe }
}
