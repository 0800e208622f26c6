import { Elysia, t } from 'elysia'
import { authGuard } from '../auth/guard'
import type { AppDeps } from '../deps'
import { HistoryQuery, MessagePage } from '../messages/model'
import { historyJson } from '../messages/history'
import { errors, markReplayed, prebuiltJson, served } from '../shared/http'
import { Conversation, ConversationList, ConversationListQuery, conversationFor, CreateConversation, LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT, LIST_MAX_MEMBERS } from './model'
import * as conversations from './service'

export const conversationRoutes = (deps: AppDeps) =>
  new Elysia({ prefix: '/conversations', detail: { tags: ['conversations'] } })
    .use(authGuard(deps))
    .get(
      '',
      async ({ user, query }) => {
        const page = await conversations.pageFor(deps.store, user, query)
        return { conversations: page.conversations.map((c) => conversationFor(c, user.id)), next_cursor: page.nextCursor }
      },
      {
        auth: true,
        query: ConversationListQuery,
        response: { 200: served(ConversationList), ...errors(401, 422) },
        detail: {
          summary: "The caller's conversations, most recently active first, a page at a time",
          description: [
            "Ordered by each conversation's latest activity, to the second: its newest message, or its creation when it has none; within the same second the larger id goes first.",
            `A page holds at most \`limit\` conversations (default ${LIST_DEFAULT_LIMIT}, at most ${LIST_MAX_LIMIT}), each with all its members, and fewer once their members together would pass ${LIST_MAX_MEMBERS.toLocaleString('en-US')} (a page always holds one).`,
            'Pass `next_cursor` back as `cursor` for the next page; it is null on the last page. A cursor is opaque: a malformed one is 422 on `cursor`.',
            'A page continues after the position where the previous page ended. A conversation that becomes active while you page moves to the front: later pages do not show it again, and may not show it at all, but its message reaches you live (a `message` frame on /ws; a `conversation` frame for one you were just added to). Start again without a cursor for the current order.',
          ].join('\n\n'),
        },
      },
    )
    .post(
      '',
      async ({ user, body, set, status }) => {
        const { conversation, created } = await conversations.create(deps, user, body)
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
    .get('/:id/messages', async ({ user, params, query }) => prebuiltJson(await historyJson(deps.store, user, params.id, query)), {
      auth: true,
      params: t.Object({ id: t.String() }),
      query: HistoryQuery,
      response: { 200: served(MessagePage), ...errors(401, 403, 404, 422) },
      detail: {
        summary: 'Message history, oldest first',
        description: 'Without cursors: the newest `limit`. `before=<seq>` pages back; `after=<seq>` pages forward (catch up after a reconnect).',
      },
    })
