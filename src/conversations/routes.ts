import { Elysia, t } from 'elysia'
import { authGuard } from '../auth/guard'
import type { AppDeps } from '../deps'
import { HistoryQuery, MessagePage } from '../messages/model'
import { historyJson } from '../messages/history'
import { errors, prebuiltJson, served } from '../shared/http'
import { Conversation, ConversationList, conversationFor, CreateConversation } from './model'
import * as conversations from './service'

export const conversationRoutes = (deps: AppDeps) =>
  new Elysia({ prefix: '/conversations', detail: { tags: ['conversations'] } })
    .use(authGuard(deps))
    .get('', ({ user }) => ({ conversations: conversations.listFor(deps.db, user).map((c) => conversationFor(c, user.id)) }), {
      auth: true,
      response: { 200: served(ConversationList), ...errors(401) },
      detail: { summary: "The caller's conversations, most recently active first" },
    })
    .post(
      '',
      ({ user, body, status }) => {
        const { conversation, created } = conversations.create(deps, user, body)
        return status(created ? 201 : 200, conversationFor(conversation, user.id))
      },
      {
        auth: true,
        body: CreateConversation,
        parse: 'json',
        response: { 200: served(Conversation), 201: served(Conversation), ...errors(400, 401, 422) },
        detail: {
          summary: 'Create a group, or open a 1-on-1',
          description:
            'The caller is always a member. Exactly one other member and no title is a 1-on-1: the existing one between the two is returned (200) or it is created (201). Anything else needs a title and creates a group (201).',
        },
      },
    )
    .get('/:id/messages', ({ user, params, query }) => prebuiltJson(historyJson(deps.db, user, params.id, query)), {
      auth: true,
      params: t.Object({ id: t.String() }),
      query: HistoryQuery,
      response: { 200: served(MessagePage), ...errors(401, 403, 404, 422) },
      detail: {
        summary: 'Message history, oldest first',
        description: 'Without cursors: the newest `limit`. `before=<seq>` pages back; `after=<seq>` pages forward (catch up after a reconnect).',
      },
    })
