import { t } from 'elysia'
import type { Change } from '../conversations/changes'
import type { Conversation } from '../conversations/model'
import type { Message } from '../messages/model'
import type { DomainError, FieldIssue } from '../shared/errors'

/** Frames a client may send. `message` takes the same fields as POST /messages, sender implied. */
export const JoinFrame = t.Object({ type: t.Literal('join'), conversation_id: t.String({ minLength: 1, maxLength: 64 }) })
/** Changes to a message: the same rules as PATCH and DELETE /messages/{id}. */
export const EditFrame = t.Object({ type: t.Literal('edit'), id: t.String({ minLength: 1, maxLength: 128 }), content: t.String() })
export const DeleteFrame = t.Object({ type: t.Literal('delete'), id: t.String({ minLength: 1, maxLength: 128 }) })
/** A reaction added (`react`) or taken back (`unreact`): the same rules as PUT and DELETE /messages/{id}/reactions/{emoji}. */
export const ReactFrame = t.Object({ type: t.Union([t.Literal('react'), t.Literal('unreact')]), id: t.String({ minLength: 1, maxLength: 128 }), emoji: t.String({ maxLength: 64 }) })
const MAX_RESUMED = 5_000

/**
 * Where a reconnecting client stood: the last event_seq it applied, by conversation id. Bounded:
 * more conversations than a client can be in is refused.
 */
export const ResumeFrame = t.Object({
  type: t.Literal('resume'),
  positions: t.Record(t.String(), t.Integer({ minimum: 0 }), { maxProperties: MAX_RESUMED, error: `must be an object of at most ${MAX_RESUMED} conversation ids, each with an event_seq from 0` }),
})
/** Group changes: the same rules as POST /conversations/{id}/members, DELETE …/members/{user_id} and PATCH /conversations/{id}. */
export const AddMembersFrame = t.Object({ type: t.Literal('add_members'), conversation_id: t.String({ minLength: 1, maxLength: 64 }), member_ids: t.Array(t.String({ minLength: 1, maxLength: 64 }), { minItems: 1, maxItems: 500 }) })
export const RemoveMemberFrame = t.Object({ type: t.Literal('remove_member'), conversation_id: t.String({ minLength: 1, maxLength: 64 }), user_id: t.String({ minLength: 1, maxLength: 64 }) })
export const RenameFrame = t.Object({ type: t.Literal('rename'), conversation_id: t.String({ minLength: 1, maxLength: 64 }), title: t.String() })
/** A fresh access token of the socket's own user, before the one it was opened with expires. */
export const AuthFrame = t.Object({ type: t.Literal('auth'), token: t.String({ minLength: 1, maxLength: 4096 }) })
/** The sender is typing in a conversation: passed on to its other members, at most once every 2 s (presence/service.ts). */
export const TypingFrame = t.Object({ type: t.Literal('typing'), conversation_id: t.String({ minLength: 1, maxLength: 64 }) })

export type ServerFrame =
  | { type: 'ready'; user_id: string }
  | Change
  /**
   * The answer to a frame that changed nothing (a retry of a stored message, the same edit again,
   * a second deletion), to the socket that sent it alone: no change, so no event_seq.
   */
  | { type: 'message' | 'message_edited' | 'message_deleted'; conversation_id: string; message: Message }
  | { type: 'reaction'; conversation_id: string; message_id: string; emoji: string; user_id: string; added: boolean }
  | { type: 'conversation'; conversation: Conversation }
  | { type: 'joined'; conversation_id: string }
  | { type: 'resync_required'; conversation_id: string }
  | { type: 'resumed' }
  | { type: 'pong' }
  | { type: 'authenticated' }
  /** Someone else in the conversation is typing: no event_seq, never replayed; show it for 5 s. */
  | { type: 'typing'; conversation_id: string; user_id: string }
  /** Someone who shares a conversation with this socket's user came online (first socket) or went offline (last one, a grace ago). */
  | { type: 'presence'; user_id: string; online: boolean }
  | { type: 'error'; error: { code: string; message: string; details?: FieldIssue[] }; message_id?: string; conversation_id?: string }

export const frame = (f: ServerFrame): string => JSON.stringify(f)

/** An error frame, echoing the ids of the frame that caused it so a client can tell which failed. */
export function errorFrame(error: Pick<DomainError, 'code' | 'message' | 'details'>, cause?: Record<string, unknown>): string {
  const ref: { message_id?: string; conversation_id?: string } = {}
  if (typeof cause?.message_id === 'string') ref.message_id = cause.message_id.slice(0, 128)
  if (typeof cause?.conversation_id === 'string') ref.conversation_id = cause.conversation_id.slice(0, 64)
  return frame({ type: 'error', error: { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) }, ...ref })
}
