import type { Statement } from 'bun:sqlite'
import * as conversationService from '../conversations/service'
import { perDatabase, type Db } from '../db/client'
import type { MessageRow } from '../db/schema'
import { validator } from '../shared/validation'
import type { User } from '../users/model'
import { HISTORY_DEFAULT_LIMIT, HistoryQuery, toMessage, type MessagePage } from './model'

const checkHistory = validator(HistoryQuery)

type From = 'newest' | 'oldest'

/** What a page request asks for, once validated and allowed; every page shape is one of these. */
type PageBounds = { from: From; params: { conversationId: string; after: number; before: number; limit: number } }

/**
 * The rules every history page follows, whether it is served as objects or as JSON: the query's
 * validation, the default limit, membership, and which end of the range the page is taken from.
 * An absent bound is the widest one.
 */
function pageBounds(db: Db, actor: User, conversationId: string, query: unknown): PageBounds {
  const { limit = HISTORY_DEFAULT_LIMIT, before, after } = checkHistory(query)
  conversationService.requireMember(db, actor, conversationId)
  return {
    from: after === undefined ? 'newest' : 'oldest',
    params: { conversationId, after: after ?? 0, before: before ?? Number.MAX_SAFE_INTEGER, limit },
  }
}

// The page, in SQL, over $conversationId, $after, $before and $limit. `beyond` is the seq of the
// first message past the page (the limit+1-th from the end the page is taken from), or NULL when
// the range holds no more than the page: so it is also has_more. The page is then the range cut at
// `beyond`, read oldest first, so neither statement reverses or sorts anything, and each part is a
// range search of the (conversation_id, seq) index (tests/messages/query-plan.test.ts).
const RANGE = 'conversation_id = $conversationId AND seq > $after AND seq < $before'
const beyond = (from: From) => `(SELECT seq FROM messages WHERE ${RANGE} ORDER BY seq ${from === 'newest' ? 'DESC' : 'ASC'} LIMIT 1 OFFSET $limit)`
const page = (from: From, columns: string) =>
  `SELECT ${columns} FROM messages WHERE conversation_id = $conversationId AND ` +
  (from === 'newest' ? `seq > coalesce(${beyond(from)}, $after) AND seq < $before` : `seq > $after AND seq < coalesce(${beyond(from)}, $before)`) +
  ` ORDER BY seq`

type PageRow = MessageRow & { hasMore: 0 | 1 }

// An empty page has no row to carry has_more, and needs none: the range is empty, so nothing is beyond.
const objectPage = (db: Db, from: From): Statement<PageRow> =>
  db.$client.prepare(
    page(
      from,
      `id, conversation_id AS conversationId, seq, sender_id AS senderId, message_id AS messageId, content, created_at AS createdAt, ${beyond(from)} IS NOT NULL AS hasMore`,
    ),
  )

// The same page as the REST body, built by SQLite in one string: no object per message, and no
// second pass over them (Drizzle's row mapping, toMessage, the response schema's normalisation and
// JSON.stringify each walked all 50). json_object escapes
// text exactly as JSON.stringify does, and created_at is formatted as shared/time.ts iso() formats it
// for years 0000–9999 (tests/messages/history.test.ts compares the two pages for every shape, with
// awkward content and timestamps). datetime(…, 'subsec') rather than strftime('…%f'): the same
// text, several times cheaper (strftime's %f alone was a third of the statement).
// json_group_array takes the rows in the order the subquery yields them: oldest first.
const CREATED_AT_ISO = `replace(datetime(created_at / 1000.0, 'unixepoch', 'subsec'), ' ', 'T') || 'Z'`
const MESSAGE_JSON =
  `json_object('id', id, 'message_id', message_id, 'sender_id', sender_id, 'conversation_id', conversation_id, 'content', content, ` +
  `'created_at', ${CREATED_AT_ISO}, 'seq', seq)`
const jsonPage = (db: Db, from: From): Statement<{ page: string }> =>
  db.$client.prepare(
    `SELECT '{"messages":' || (SELECT json_group_array(${MESSAGE_JSON}) FROM (${page(from, '*')})) || ` +
      `',"has_more":' || iif(${beyond(from)} IS NULL, 'false', 'true') || '}' AS page`,
  )

const statements = perDatabase((db) => ({
  objects: { newest: objectPage(db, 'newest'), oldest: objectPage(db, 'oldest') },
  json: { newest: jsonPage(db, 'newest'), oldest: jsonPage(db, 'oldest') },
}))

/**
 * A page of history, oldest first. Without `after`: the newest `limit` messages (before `before`,
 * if given). With `after`: the oldest `limit` messages after it (up to `before`, if given), to
 * catch up from the last seq a client saw.
 */
export function history(db: Db, actor: User, conversationId: string, query: unknown): MessagePage {
  const { from, params } = pageBounds(db, actor, conversationId, query)
  const rows = statements(db).objects[from].all(params)
  return { messages: rows.map(toMessage), has_more: rows[0]?.hasMore === 1 }
}

/** The same page as history(), as the JSON text of a MessagePage (for the REST API). */
export function historyJson(db: Db, actor: User, conversationId: string, query: unknown): string {
  const { from, params } = pageBounds(db, actor, conversationId, query)
  return statements(db).json[from].get(params)!.page
}
