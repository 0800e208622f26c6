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
  lastMessageAt: number | null
}

type NewConversation = Omit<ConversationRow, 'lastSeq' | 'lastMessageAt'> & {
  /** Every member, the creator first: their order is the order members are listed in. */
  memberIds: readonly string[]
  /** The members' rows' activity (to the second), which orders each member's list. */
  activityAt: number
}

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
  activeOf(userId: string, after: { at: number; id: string }, limit: number): Promise<Array<{ conversation: ConversationRow; activity: number }>>
  /** The conversations a user belongs to, each with the seq of its newest message. */
  positionsOf(userId: string): Promise<Array<{ id: string; lastSeq: number }>>
  isMember(conversationId: string, userId: string): Promise<boolean>
}
