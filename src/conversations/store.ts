import type { UserRecord } from '../users/store'

/** A conversation as stored. */
export type ConversationRow = {
  id: string
  title: string | null
  isGroup: boolean
  /** For a 1-on-1: the two member ids, sorted and joined, so the pair can exist only once. */
  directKey: string | null
  createdBy: string
  createdAt: number
  /** The seq of the newest message. */
  lastSeq: number
  /** The event_seq of the newest change of its change stream. */
  lastEventSeq: number
  lastMessageAt: number | null
}

type NewConversation = Omit<ConversationRow, 'lastSeq' | 'lastEventSeq' | 'lastMessageAt'> & {
  /** Every member, the creator first: their order is the order members are listed in. */
  memberIds: readonly string[]
  /** The members' rows' activity (to the second), which orders each member's list. */
  activityAt: number
}

/** A change of a conversation other than a message being sent (see db/schema.ts conversationEvents). */
export type ChangeRow = {
  eventSeq: number
  /** The conversation's last_seq when it happened. */
  afterSeq: number
  type: string
  messageId: string | null
  userId: string | null
  /** JSON. */
  data: string | null
  createdAt: number
}

/** A change to record: numbered by recordChange() in the stores, which fills in event_seq and after_seq. */
export type NewChange = Omit<ChangeRow, 'eventSeq' | 'afterSeq'> & { conversationId: string }

/** Where a change stream stands at one event_seq: the newest change row at or before it (or where pruning stopped). */
export type StreamBase = { eventSeq: number; afterSeq: number }

/** Every query of the conversations context; one implementation per engine. */
export type ConversationStore = {
  /**
   * Stores the conversation and its members in one transaction; a 1-on-1 whose pair (directKey)
   * already has one is not stored, and that one is returned with created: false.
   */
  create(conversation: NewConversation): Promise<{ row: ConversationRow; created: boolean }>
  byId(id: string): Promise<ConversationRow | undefined>
  /** The members of each conversation, each in the order they were added. */
  membersOfEach(ids: readonly string[]): Promise<Array<UserRecord & { conversationId: string }>>
  /** One conversation's members, in the order they were added. */
  membersOf(conversationId: string): Promise<UserRecord[]>
  /**
   * A user's conversations after a position in their list's order (activity, then id, both
   * descending), at most `limit`, read from that user's index: no sort, no work beyond the page.
   */
  activeOf(
    userId: string,
    after: { at: number; id: string },
    limit: number,
  ): Promise<Array<{ conversation: ConversationRow; activity: number; lastReadSeq: number; unreadCount: number }>>
  /** The conversations a user belongs to, each with the event_seq of its newest change. */
  positionsOf(userId: string): Promise<Array<{ id: string; lastEventSeq: number }>>
  isMember(conversationId: string, userId: string): Promise<boolean>
  /**
   * The change rows with `after` < event_seq <= `upTo`, oldest first, at most `limit`, and the base
   * at `after`; 'pruned' when changes after `after` are past retention (EVENT_RETENTION_DAYS).
   */
  changes(conversationId: string, after: number, upTo: number, limit: number): Promise<{ base: StreamBase; rows: ChangeRow[] } | 'pruned'>
  /**
   * Removes the change rows made before `cutoff` (epoch ms), and in each conversation every row up
   * to the newest of them (so what is left is a suffix of its stream), recording where pruning
   * stopped (pruned_event_seq, pruned_after_seq); how many rows went.
   */
  pruneChanges(cutoff: number): Promise<number>
  /**
   * Group changes, each recorded in the change stream (recordChange) in its transaction.
   * addMembers: the ids not yet members become members (their rows at the conversation's current
   * activity), each a `member_added` change; the ones added, with their event_seq.
   */
  addMembers(conversationId: string, userIds: readonly string[], by: string, at: number): Promise<Array<{ userId: string; eventSeq: number }>>
  /** A `member_removed` change; null (nothing done) when the user is not a member. */
  removeMember(conversationId: string, userId: string, by: string, at: number): Promise<number | null>
  /**
   * Moves a member's read position forward to `seq` (at most the conversation's last_seq), a `read`
   * change; null (nothing done) when it is already there or further, or they are not a member.
   */
  markRead(conversationId: string, userId: string, seq: number, at: number): Promise<{ seq: number; eventSeq: number } | null>
  /** Every member's read position, in the order they were added. */
  reads(conversationId: string): Promise<Array<{ userId: string; seq: number }>>
  /** The unread counts of these members (as activeOf counts them); non-members are left out. */
  unreadCounts(conversationId: string, userIds: readonly string[]): Promise<Array<{ userId: string; unreadCount: number }>>
  /** A `conversation_updated` change; null (nothing done) when the title is already that. */
  rename(conversationId: string, title: string, by: string, at: number): Promise<number | null>
  /** Everyone who shares a conversation with this user (not themselves), each once: whom their presence concerns. */
  coMembersOf(userId: string): Promise<string[]>
}
