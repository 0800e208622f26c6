import { Elysia, t } from 'elysia'
import { authGuard } from '../auth/guard'
import type { AppDeps } from '../deps'
import { HistoryQuery, MessagePage } from '../messages/model'
import { historyJson } from '../messages/history'
import { errors, markReplayed, prebuiltJson, served } from '../shared/http'
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
      ({ user, body, set, status }) => {
        const { conversation, created } = conversations.create(deps, user, body)
        if (!created) markReplayed(set)
        return status(201, conversationFor(conversation, user.id))
      },
      {
        auth: true,
        body: CreateConversation,
        parse: 'json',
        response: { 201: served(Conversation), ...errors(400, 401, 422) },
        detail: {
          summary: 'Create a group, or open a 1-on-1',
          description:
            'The caller is always a member. Exactly one other member is the 1-on-1 between the two, title or not (the title is ignored): the first request creates it, and every later one, from either side, answers 201 with that same conversation and the header `Idempotent-Replayed: true`. Anything else creates a group, which needs a title; `"is_group": true` makes a group even with one other member.',
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
