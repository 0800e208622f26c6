import type { ConversationRecord } from '../conversations/model'
import type { Message } from '../messages/model'

/** What services announce after a commit; the realtime layer delivers it to sockets. */
export type DomainEvent =
  | { type: 'message.created'; message: Message }
  | { type: 'conversation.created'; conversation: ConversationRecord }

export interface EventSink {
  publish(event: DomainEvent): void
}
