import { changesBetween } from '../conversations/changes'
import { conversationFor } from '../conversations/model'
import * as conversations from '../conversations/service'
import type { AppDeps } from '../deps'
import type { Connection } from './connection'
import { frame } from './frames'
import type { OrderedEvents } from './ordered'
import type { Registry } from './registry'
import { conversationTopic } from './topics'

export type Resume = ReturnType<typeof createResume>

/** Changes read from the database per round of a replay. */
const PAGE = 200

/**
 * The `resume` frame: a socket that reconnects says where it stood in each conversation (the last
 * event_seq it applied) and is sent, per conversation and in order, every change after it, and
 * everything of the conversations it did not name (it joined them since: a `conversation` frame
 * first), then `resumed`.
 *
 * Exact, with live delivery going on: while a conversation is replayed the socket is not
 * subscribed to it. This node first delivers (to its other sockets) everything the conversation
 * had committed when the replay began, so its delivered mark is at least there; the replay then
 * reads from the database up to the mark, and again while the mark moves, and subscribes the
 * socket in the same turn of the event loop in which it finds nothing left below the mark: every
 * change up to the mark was replayed, every change after it will be published to the topic.
 */
export function createResume(deps: Pick<AppDeps, 'store'>, registry: Registry, ordered: OrderedEvents) {
  async function replay(connection: Connection, conversationId: string, after: number, lastEventSeq: number): Promise<void> {
    const topic = conversationTopic(conversationId)
    connection.ws.unsubscribe(topic)
    ordered.know(conversationId, lastEventSeq)
    await ordered.deliverUpTo(conversationId, lastEventSeq + 1)
    let position = after
    for (;;) {
      if (connection.ws.readyState !== 1) return
      const mark = ordered.position(conversationId) ?? lastEventSeq
      if (mark <= position) break
      const changes = await changesBetween(deps.store, conversationId, position, mark + 1, PAGE)
      if (changes === 'pruned') {
        // Past retention: the client reloads the conversation, and follows it live from here.
        registry.send(connection, frame({ type: 'resync_required', conversation_id: conversationId }))
        position = mark
        continue
      }
      for (const change of changes) registry.send(connection, frame(change))
      position = changes.at(-1)?.event_seq ?? mark
    }
    connection.ws.subscribe(topic)
  }

  /** Replays every conversation of the socket's user from `positions` (event_seq by conversation id). */
  async function resume(connection: Connection, positions: Readonly<Record<string, number>>): Promise<void> {
    const userId = connection.user.id
    for (const { id, lastEventSeq } of await conversations.positionsFor(deps.store, userId)) {
      if (connection.ws.readyState !== 1) return
      const after = Object.hasOwn(positions, id) ? positions[id]! : undefined
      if (after === undefined) {
        const record = await conversations.recordById(deps.store, id)
        if (!record) continue
        registry.send(connection, frame({ type: 'conversation', conversation: conversationFor(record, userId) }))
      }
      await replay(connection, id, after ?? 0, lastEventSeq)
    }
  }

  return { resume }
}
