import { t } from 'elysia'
import type { Conversation } from '../conversations/model'
import type { Message } from '../messages/model'
import type { DomainError, FieldIssue } from '../shared/errors'

/** Frames a client may send. `message` takes the same fields as POST /messages, sender implied. */
export const JoinFrame = t.Object({ type: t.Literal('join'), conversation_id: t.String({ minLength: 1, maxLength: 64 }) })
/** A fresh access token of the socket's own user, before the one it was opened with expires. */
export const AuthFrame = t.Object({ type: t.Literal('auth'), token: t.String({ minLength: 1, maxLength: 4096 }) })

export type ServerFrame =
  | { type: 'ready'; user_id: string }
  | { type: 'message'; message: Message }
  | { type: 'conversation'; conversation: Conversation }
  | { type: 'joined'; conversation_id: string }
  | { type: 'pong' }
  | { type: 'authenticated' }
  | { type: 'error'; error: { code: string; message: string; details?: FieldIssue[] }; message_id?: string; conversation_id?: string }

export const frame = (f: ServerFrame): string => JSON.stringify(f)

/** An error frame, echoing the ids of the frame that caused it so a client can tell which failed. */
export function errorFrame(error: Pick<DomainError, 'code' | 'message' | 'details'>, cause?: Record<string, unknown>): string {
  const ref: { message_id?: string; conversation_id?: string } = {}
  if (typeof cause?.message_id === 'string') ref.message_id = cause.message_id.slice(0, 128)
  if (typeof cause?.conversation_id === 'string') ref.conversation_id = cause.conversation_id.slice(0, 64)
  return frame({ type: 'error', error: { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) }, ...ref })
}
