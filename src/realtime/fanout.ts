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
 * Events to this node's JSON sockets: each change to its conversation's topic, a new conversation
 * to its members' sockets (subscribed to it from then on), and an ended session's sockets closed.
 * After a bus interruption, what other nodes announced meanwhile is read again (recheck()).
 */
export function createFanout(deps: Pick<AppDeps, 'store' | 'logger'>, registry: Registry, ordered: OrderedEvents) {
  /** A socket follows a conversation from `lastEventSeq` on: subscribed to its topic, and its gaps filled from there. */
  function follow(connection: Connection, conversationId: string, lastEventSeq: number): void {
    ordered.know(conversationId, lastEventSeq)
    connection.ws.subscribe(conversationTopic(conversationId))
  }

  /** Tells a user's JSON sockets of a conversation, and has them follow it. */
  function announce(connections: Iterable<Connection>, record: ConversationRecord, userId: string): void {
    let data: string | undefined
    for (const connection of connections) {
      // A socket waiting to resume is told of it by its replay.
      if (connection.format !== 'json' || connection.awaitingResume) continue
      data ??= frame({ type: 'conversation', conversation: conversationFor(record, userId) })
      follow(connection, record.id, record.lastEventSeq)
      registry.send(connection, data)
    }
  }

  function event(event: DomainEvent): void {
    switch (event.type) {
      case 'conversation.changed': {
        const { change } = event
        const topic = conversationTopic(change.conversation_id)
        // A new member's sockets are told of the conversation and follow it, then hear of their arrival with the others.
        if (change.type === 'member_added') {
          const connections = registry.ofUser(change.user_id)
          if (connections && event.conversation) announce(connections, event.conversation, change.user_id)
          // Read from the database after a gap, it came without the conversation: read that too.
          else if (connections) void announceLater(change.conversation_id, change.user_id)
        }
        registry.publish(topic, frame(change))
        // A removed member's sockets hear of it, and then of nothing more of it.
        if (change.type === 'member_removed') for (const connection of registry.ofUser(change.user_id) ?? []) connection.ws.unsubscribe(topic)
        return
      }
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

  async function announceLater(conversationId: string, userId: string): Promise<void> {
    try {
      const record = await conversations.recordById(deps.store, conversationId)
      if (record?.members.some((m) => m.id === userId)) announce(registry.ofUser(userId) ?? [], record, userId)
    } catch (error) {
      deps.logger.error({ err: error, conversation_id: conversationId, user_id: userId }, 'telling a new member of a conversation failed')
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
