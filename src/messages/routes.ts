import { Elysia } from 'elysia'
import { authGuard } from '../auth/guard'
import type { AppDeps } from '../deps'
import { errors, served } from '../shared/http'
import { Message, PostMessage } from './model'
import * as messages from './service'

export const messageRoutes = (deps: AppDeps) =>
  new Elysia({ detail: { tags: ['messages'] } }).use(authGuard(deps)).post(
    '/messages',
    async ({ user, body, status }) => {
      const { message, created } = await messages.post(deps, user, body)
      return status(created ? 201 : 200, message)
    },
    {
      auth: true,
      body: PostMessage,
      parse: 'json',
      response: { 200: served(Message), 201: served(Message), ...errors(400, 401, 403, 404, 409, 413, 422) },
      detail: {
        summary: 'Send a message',
        description:
          'Stored, then delivered to every member\'s sockets. A retry with the same `message_id` returns the stored message with 200 and stores nothing; the same `message_id` with other content or another conversation is 409.',
      },
    },
  )
