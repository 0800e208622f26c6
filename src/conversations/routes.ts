import { Elysia, t } from 'elysia'
import { authGuard } from '../auth/guard'
import type { AppDeps } from '../deps'
import { HistoryQuery, Message, MessagePage } from '../messages/model'
import { historyJson } from '../messages/history'
import { exportConversation } from '../messages/export'
import { download, errorDocs, errors, markReplayed, prebuiltJson, responseDoc, served } from '../shared/http'
import {
  AddMembers,
  Conversation,
  ConversationList,
  ConversationListQuery,
  conversationFor,
  CreateConversation,
  LIST_DEFAULT_LIMIT,
  LIST_MAX_LIMIT,
  LIST_MAX_MEMBERS,
  listItemFor,
  MarkRead,
  ReadPositions,
  RenameConversation,
} from './model'
import { ChangePage, ChangesQuery, CHANGES_DEFAULT_LIMIT, changePage } from './changes'
import * as conversations from './service'

const ConversationPath = t.Object({ id: t.String() })

export const conversationRoutes = (deps: AppDeps) => {
  // A membership ended on any node (the bus carries it between nodes) is believed no longer here either.
  const unsubscribe = deps.bus.subscribe((event) => {
    if (event.type === 'conversation.changed' && event.change.type === 'member_removed') conversations.forgetMember(deps.store, event.change.conversation_id, event.change.user_id)
  })
  return new Elysia({ prefix: '/conversations', detail: { tags: ['conversations'] } })
    .onStop(() => unsubscribe())
    .use(authGuard(deps))
    .get(
      '',
      async ({ user, query }) => {
        const page = await conversations.pageFor(deps.store, user, query)
        return { conversations: page.conversations.map((c) => listItemFor(c, user.id)), next_cursor: page.nextCursor }
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
            "Each carries what the caller has read of it: `last_read_seq` (POST /conversations/{id}/read) and `unread_count`, the messages after it that others sent, deleted ones excluded.",
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
    .get('/:id/events', async ({ user, params, query }) => changePage(deps.store, user, params.id, query), {
      auth: true,
      params: t.Object({ id: t.String() }),
      query: ChangesQuery,
      response: { 200: served(ChangePage), ...errors(401, 403, 404, 410, 422) },
      detail: {
        summary: 'The change stream, oldest first: catch up from an event_seq',
        description: [
          "Every change to the conversation has the next number in its `event_seq` (1, 2, 3, … without gaps, in commit order; separate from a message's `seq`). Each event here is the object its live WebSocket frame carried: a `message` frame's `{type, conversation_id, event_seq, message}`, with the message as it is now.",
          `\`after=<event_seq>\` (default 0) returns the changes after it, at most \`limit\` (default ${CHANGES_DEFAULT_LIMIT}); \`has_more\` says whether more follow. Start from a conversation's \`last_event_seq\` (in GET /conversations) to follow it from now on.`,
          'Changes older than the retention (`EVENT_RETENTION_DAYS`) are gone: asking for them answers 410 `resync_required`; load the conversation again and continue from its `last_event_seq`.',
        ].join('\n\n'),
      },
    })
    .get('/:id/export', async ({ user, params }) => download(await exportConversation(deps, user, params.id)), {
      auth: true,
      params: ConversationPath,
      detail: {
        summary: 'Export a conversation: every message, oldest first, as NDJSON',
        description: [
          'Members only. `Content-Type: application/x-ndjson`, a download (`Content-Disposition: attachment`): one JSON object per line, each message as history pages show it, oldest first (by `seq`), every message up to the last one sent when the export began. Content and reactions are as they are now; an edited message has `edited_at` (its earlier text is not kept); a deleted one keeps its place with `deleted_at` set and empty `content`. An empty conversation is an empty body.',
          'Streamed: the server reads the messages a page at a time as you read the response, however many there are. If it cannot finish (the database fails, or you stop being a member meanwhile), the connection is reset without the end of the body: a cut-off export never looks complete.',
        ].join('\n\n'),
        responses: {
          200: responseDoc('One message per line (each line one Message), oldest first', 'application/x-ndjson', Message),
          ...errorDocs(401, 403, 404),
        },
      },
    })
    .post(
      '/:id/read',
      async ({ user, params, body, status }) => {
        await conversations.markRead(deps, user, params.id, body)
        return status(204, undefined)
      },
      {
        auth: true,
        params: ConversationPath,
        body: MarkRead,
        parse: 'json',
        response: { 204: t.Void(), ...errors(400, 401, 403, 404, 422) },
        detail: {
          summary: 'Mark the conversation read up to a message',
          description: [
            "Moves the caller's read position (`last_read_seq` in GET /conversations) forward to `seq`; it only ever moves forward, so a lower `seq` changes nothing (still 204), and one past the newest message counts as the newest.",
            'A move is part of the change stream: every member\'s sockets get `{"type":"read","conversation_id","user_id","seq","event_seq"}` (the caller\'s other devices clear their unread mark; the others see a receipt), and a resume or GET /conversations/{id}/events brings it too.',
          ].join('\n\n'),
        },
      },
    )
    .get('/:id/reads', async ({ user, params }) => ({ reads: (await conversations.reads(deps.store, user, params.id)).map((r) => ({ user_id: r.userId, seq: r.seq })) }), {
      auth: true,
      params: ConversationPath,
      response: { 200: served(ReadPositions), ...errors(401, 403, 404) },
      detail: {
        summary: "Every member's read position",
        description: 'For read receipts ("Seen by"): each member and the seq of the newest message they have read. Live changes come as `read` frames.',
      },
    })
    .patch('/:id', async ({ user, params, body }) => conversationFor((await conversations.rename(deps, user, params.id, body)).conversation, user.id), {
      auth: true,
      params: ConversationPath,
      body: RenameConversation,
      parse: 'json',
      response: { 200: served(Conversation), ...errors(400, 401, 403, 404, 409, 422) },
      detail: {
        summary: 'Rename a group',
        description: "Any member. Every member's sockets get a `conversation_updated` frame. The same title again changes nothing. A 1-on-1 has no title: 409 `not_a_group`.",
      },
    })
    .post('/:id/members', async ({ user, params, body }) => conversationFor((await conversations.addMembers(deps, user, params.id, body)).conversation, user.id), {
      auth: true,
      params: ConversationPath,
      body: AddMembers,
      parse: 'json',
      response: { 200: served(Conversation), ...errors(400, 401, 403, 404, 409, 422) },
      detail: {
        summary: 'Add people to a group',
        description:
          "Any member may add. Each new member can read the whole history; their sockets get a `conversation` frame and then everything of it live, and every member's sockets a `member_added` frame per person. Ids already members are left as they are; an unknown id is 422 on `member_ids`. A 1-on-1 keeps its two members: 409 `not_a_group`.",
      },
    })
    .delete(
      '/:id/members/:user_id',
      async ({ user, params, status }) => {
        await conversations.removeMember(deps, user, params.id, params.user_id)
        return status(204, undefined)
      },
      {
        auth: true,
        params: t.Object({ id: t.String(), user_id: t.String() }),
        response: { 204: t.Void(), ...errors(401, 403, 404, 409) },
        detail: {
          summary: 'Leave a group, or remove someone from it',
          description:
            "Yourself: you leave. Someone else: only the group's creator may. From then on they are no member, on every node: their sockets stop receiving it at once and their reads are 403. Every member's sockets (theirs too) get a `member_removed` frame. 404 when they are not a member; a 1-on-1: 409 `not_a_group`.",
        },
      },
    )
}
