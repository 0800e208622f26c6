import { presencePush, typingPush } from '../../views/presence'
import * as conversations from '../conversations/service'
import type { AppDeps } from '../deps'
import type { Registry } from '../realtime/registry'
import { userHtmlTopic } from '../realtime/topics'

/**
 * Typing and presence rendered for the web UI's pages on this node, straight from the bus (in no
 * change stream, as realtime/signals.ts does for JSON sockets). A typing push goes to the other
 * members with a page open here (its line shows only where that conversation is open); a presence
 * push to each watcher with a page open here, once, however many conversations they share.
 */
export function pushSignalsToWebUi(deps: Pick<AppDeps, 'bus' | 'store' | 'logger'>, registry: Pick<Registry, 'publish' | 'subscribers' | 'htmlSockets'>) {
  const listening = (userId: string) => registry.subscribers(userHtmlTopic(userId)) > 0

  return deps.bus.subscribe((event) => {
    if (registry.htmlSockets === 0) return
    if (event.type === 'typing') {
      const { conversationId, user } = event
      conversations
        .memberIdsOf(deps.store, conversationId)
        .then((members) => {
          let markup: string | undefined
          for (const id of members) if (id !== user.id && listening(id)) registry.publish(userHtmlTopic(id), (markup ??= typingPush(conversationId, user)))
        })
        .catch((error) => deps.logger.error({ err: error, conversation_id: conversationId }, 'web UI typing push failed'))
      return
    }
    if (event.type === 'presence') {
      let markup: string | undefined
      for (const id of event.watchers) if (listening(id)) registry.publish(userHtmlTopic(id), (markup ??= presencePush([{ id: event.userId, online: event.online }])))
    }
  })
}
