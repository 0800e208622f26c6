import type { Change } from '../conversations/changes'
import type { ConversationRecord } from '../conversations/model'
import type { User } from '../users/model'

/** What services announce after a commit; the realtime layer delivers it to sockets. */
export type DomainEvent =
  /** A change to a conversation: a message sent, edited, deleted... (conversations/changes.ts). */
  | {
      type: 'conversation.changed'
      change: Change
      /** With `member_added`: the conversation as it is after the change, for the new member's sockets. */
      conversation?: ConversationRecord
    }
  | { type: 'conversation.created'; conversation: ConversationRecord }
  /**
   * A request changed nothing because its change was already stored (a retry): if the node that
   * stored it failed before announcing it, the change was never announced, so every node delivers
   * whatever the conversation has that it has not delivered yet, read from the database.
   */
  | { type: 'conversation.check'; conversationId: string }
  /** A login session ended (sessionId), or all of a user's (null): their sockets must close. */
  | { type: 'session.ended'; userId: string; sessionId: string | null }
  /**
   * Someone is typing in a conversation, for its other members' sockets: passed on, never stored,
   * in no change stream (presence/service.ts). The typist as others see them, for the web UI.
   */
  | { type: 'typing'; conversationId: string; user: User }
  /**
   * Someone came online (their first socket anywhere) or went offline (their last one closed, a
   * grace ago), for the sockets of `watchers`: everyone who shares a conversation with them.
   */
  | { type: 'presence'; userId: string; online: boolean; watchers: string[] }

export interface EventSink {
  publish(event: DomainEvent): void
}
