import { Elysia, t } from 'elysia'
import { authGuard } from '../auth/guard'
import type { AppDeps } from '../deps'
import { errors, markReplayed, served } from '../shared/http'
import { EditMessage, Message, PostMessage } from './model'
import * as messages from './service'

const MessagePath = t.Object({ id: t.String({ description: "The message's id (its `id`, not the client's message_id)" }) })
const ReactionPath = t.Object({ id: MessagePath.properties.id, emoji: t.String({ description: 'One emoji, URL-encoded' }) })

export const messageRoutes = (deps: AppDeps) =>
  new Elysia({ detail: { tags: ['messages'] } })
    .use(authGuard(deps))
    .post(
      '/messages',
      async ({ user, body, set, status }) => {
        const { message, created } = await messages.post(deps, user, body)
        if (!created) markReplayed(set)
        return status(201, message)
      },
      {
        auth: true,
        body: PostMessage,
        parse: 'json',
        response: { 201: served(Message), ...errors(400, 401, 403, 404, 409, 413, 422) },
        detail: {
          summary: 'Send a message',
          description:
            'Stored, then delivered to every member\'s sockets. A retry with the same `message_id` answers as the first request did (201 with the stored message, as it is now) plus the header `Idempotent-Replayed: true`, and stores and delivers nothing; the same `message_id` with other content or another conversation is 409 (once the message was edited or deleted, any content in the same conversation counts as a retry).',
        },
      },
    )
    .patch('/messages/:id', async ({ user, params, body }) => (await messages.edit(deps, user, params.id, body)).message, {
      auth: true,
      params: MessagePath,
      body: EditMessage,
      parse: 'json',
      response: { 200: served(Message), ...errors(400, 401, 403, 404, 409, 413, 422) },
      detail: {
        summary: 'Edit a message',
        description:
          'Only its sender. Answers the message with its new content and `edited_at`; every member\'s sockets get a `message_edited` frame. The same content again changes nothing and answers the message as it is (a retry is safe). A deleted message cannot be edited: 409 `message_deleted`.',
      },
    })
    .delete(
      '/messages/:id',
      async ({ user, params, status }) => {
        await messages.remove(deps, user, params.id)
        return status(204, undefined)
      },
      {
        auth: true,
        params: MessagePath,
        response: { 204: t.Void(), ...errors(401, 403, 404) },
        detail: {
          summary: 'Delete a message',
          description:
            "Its sender, or the creator of a group. The content is erased from storage (not hidden) and its reactions removed; the message keeps its place and `seq` in history, with `deleted_at` set and `content` empty. Every member's sockets get a `message_deleted` frame. Deleting it again answers 204 and changes nothing.",
        },
      },
    )
    .put(
      '/messages/:id/reactions/:emoji',
      async ({ user, params, status }) => {
        await messages.react(deps, user, params.id, params.emoji, true)
        return status(204, undefined)
      },
      {
        auth: true,
        params: ReactionPath,
        response: { 204: t.Void(), ...errors(401, 403, 404, 409, 422) },
        detail: {
          summary: 'React to a message',
          description:
            "Any member, with one emoji (URL-encoded in the path: `%F0%9F%91%8D` for 👍). Idempotent: reacting again with the same emoji changes nothing. Every member's sockets get a `reaction` frame with `added: true`; the message's `reactions` list it. A deleted message takes none (409 `message_deleted`).",
        },
      },
    )
    .delete(
      '/messages/:id/reactions/:emoji',
      async ({ user, params, status }) => {
        await messages.react(deps, user, params.id, params.emoji, false)
        return status(204, undefined)
      },
      {
        auth: true,
        params: ReactionPath,
        response: { 204: t.Void(), ...errors(401, 403, 404, 422) },
        detail: {
          summary: 'Take a reaction back',
          description: "Your own reaction with that emoji. Idempotent: one that is not there changes nothing. Every member's sockets get a `reaction` frame with `added: false`.",
        },
      },
    )
