import { groupPush, leftPush, messageChangedPush, messagePush, readPush, type PushReading } from '../../views/chat'
import type { Change } from '../conversations/changes'
import type { Reading } from '../conversations/model'
import { readingOf } from '../conversations/service'
import type { AppDeps } from '../deps'
import type { Message } from '../messages/model'
import type { OrderedEvents } from '../realtime/ordered'
import type { Registry } from '../realtime/registry'
import { userHtmlTopic } from '../realtime/topics'
import { contextFor, messagesIn, shownById, viewerOf, type Context } from './viewers'

/**
 * The web UI's live pushes: each change of a conversation, rendered for each member with a page
 * open on this node (a 1-on-1 is named differently per side, and what one may do with a message
 * depends on who looks), to the user's topic its pages' sockets listen on (`?format=html`). A
 * subscriber of the node's ordered events, beside the JSON fan-out: each conversation's changes
 * come in event_seq order, each once, whichever node stored them.
 *
 * Every push carries the change's event_seq (views/message.ts positionMark), so a page knows where
 * it stands and asks for what it missed after a dropped connection (GET /c/{id}/events). Who gets
 * it is read when it is rendered: the members after the change, and the one a removal removed.
 */
export function pushToWebUi(deps: Pick<AppDeps, 'store' | 'logger'>, ordered: OrderedEvents, registry: Pick<Registry, 'publish' | 'subscribers' | 'htmlSockets'>) {
  const { store } = deps

  /** A change's message as the push shows it: the one the change carries, or (a reaction) as it is now. */
  async function messageOf(change: Change): Promise<Message | undefined> {
    switch (change.type) {
      case 'message':
      case 'message_edited':
      case 'message_deleted':
        return change.message
      case 'reaction':
        return (await messagesIn(store, change.conversation_id, [change.message_id]))[0]
      default:
        return undefined
    }
  }

  /** Changes that move someone's unread count or "Seen by": what the listening viewers have read, read after the change. */
  const movesReads = (change: Change) => change.type === 'message' || change.type === 'message_deleted' || change.type === 'read' || change.type === 'member_added'

  function render(change: Change, context: Context, message: Message | undefined, viewerId: string, reading: Reading | null): string | null {
    const viewer = viewerOf(context, viewerId)
    const mine: PushReading = { unread: reading?.unread.get(viewerId) ?? 0, reads: reading?.reads ?? new Map() }
    switch (change.type) {
      case 'message':
        return messagePush(viewer, change.message, change.event_seq, mine)
      case 'message_edited':
      case 'reaction':
        return message ? messageChangedPush(viewer, message, change.event_seq) : null
      case 'message_deleted':
        return message ? messageChangedPush(viewer, message, change.event_seq, mine.unread) : null
      case 'member_added':
        return groupPush(viewer, change.event_seq, change.user_id === viewerId ? { unread: mine.unread } : undefined)
      case 'member_removed':
        return change.user_id === viewerId ? leftPush(viewer, change.by) : groupPush(viewer, change.event_seq)
      case 'conversation_updated':
        return groupPush(viewer, change.event_seq)
      case 'read':
        return readPush(viewer, change.event_seq, mine)
    }
  }

  async function push(change: Change): Promise<void> {
    const shown = await shownById(store, change.conversation_id)
    if (!shown) return
    const audience = shown.record.members.map((m) => m.id)
    if (change.type === 'member_removed' && !audience.includes(change.user_id)) audience.push(change.user_id)
    const listening = audience.filter((id) => registry.subscribers(userHtmlTopic(id)) > 0)
    if (listening.length === 0) return
    const message = await messageOf(change)
    // Each shows its message as of this change or later (read after it): the change's number is its version.
    const context = await contextFor(store, shown, message ? [message] : [], change.event_seq)
    const reading = movesReads(change) ? await readingOf(store, change.conversation_id, listening) : null
    for (const id of listening) {
      const markup = render(change, context, message, id, reading)
      if (markup !== null) registry.publish(userHtmlTopic(id), markup)
    }
  }

  /** Pushes go out in the order of the changes, though each reads before it is rendered: one after the other. */
  let pushes: Promise<void> = Promise.resolve()

  return ordered.subscribe({
    event(event) {
      if (event.type !== 'conversation.changed' || registry.htmlSockets === 0) return
      const { change } = event
      pushes = pushes.then(() => push(change)).catch((error) => deps.logger.error({ err: error, conversation_id: change.conversation_id }, 'web UI push failed'))
    },
    // Which conversations a page here shows is not known here: any page open follows them all.
    follows: () => registry.htmlSockets > 0,
  })
}
