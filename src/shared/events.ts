import type { ConversationRecord } from '../conversations/model'
import type { Message } from '../messages/model'

/** What services announce after a commit; the realtime layer delivers it to sockets. */
export type DomainEvent =
  | { type: 'message.created'; message: Message }
  | { type: 'conversation.created'; conversation: ConversationRecord }
  /** A login session ended (sessionId), or all of a user's (null): their sockets must close. */
  | { type: 'session.ended'; userId: string; sessionId: string | null }

export interface EventSink {
  publish(event: DomainEvent): void
}
