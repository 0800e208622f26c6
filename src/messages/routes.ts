import { Elysia } from 'elysia'
import { authGuard } from '../auth/guard'
import type { AppDeps } from '../deps'
import { errors, markReplayed, served } from '../shared/http'
import { Message, PostMessage } from './model'
import * as messages from './service'

export const messageRoutes = (deps: AppDeps) =>
  new Elysia({ detail: { tags: ['messages'] } }).use(authGuard(deps)).post(
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
          'Stored, then delivered to every member\'s sockets. A retry with the same `message_id` answers as the first request did (201 with the stored message) plus the header `Idempotent-Replayed: true`, and stores and delivers nothing; the same `message_id` with other content or another conversation is 409.',
      },
    },
  )
