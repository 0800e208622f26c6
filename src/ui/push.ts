import { livePush } from '../../views/chat'
import * as conversations from '../conversations/service'
import type { AppDeps } from '../deps'
import type { Message } from '../messages/model'
import type { OrderedEvents } from '../realtime/ordered'
import type { Registry } from '../realtime/registry'
import { userHtmlTopic } from '../realtime/topics'

/**
 * The web UI's live pushes: each message, rendered for each member with a page open on this node
 * (a 1-on-1 is named differently per side), to the user's topic its pages' sockets listen on
 * (`?format=html`). A subscriber of the node's ordered events, beside the JSON fan-out: messages
 * come in seq order, whichever node stored them.
 */
export function pushToWebUi(deps: Pick<AppDeps, 'store' | 'logger'>, ordered: OrderedEvents, registry: Pick<Registry, 'publish' | 'subscribers' | 'htmlSockets'>) {
  async function push(message: Message): Promise<void> {
    const record = await conversations.recordById(deps.store, message.conversation_id)
    if (!record) return
    for (const member of record.members) {
      const topic = userHtmlTopic(member.id)
      if (registry.subscribers(topic) > 0) registry.publish(topic, livePush(record, message, member.id))
    }
  }

  /** Pushes go out in the order the messages were stored, though each reads its conversation's members first: one after the other. */
  let pushes: Promise<void> = Promise.resolve()

  return ordered.subscribe({
    event(event) {
      if (event.type !== 'conversation.changed' || event.change.type !== 'message' || registry.htmlSockets === 0) return
      const { message } = event.change
      pushes = pushes.then(() => push(message)).catch((error) => deps.logger.error({ err: error, conversation_id: message.conversation_id }, 'web UI push failed'))
    },
    // Which conversations a page here shows is not known here: any page open follows them all.
    follows: () => registry.htmlSockets > 0,
  })
}
