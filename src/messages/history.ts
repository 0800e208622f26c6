import { and, asc, desc, eq, gt, lt, sql } from 'drizzle-orm'
import * as conversationService from '../conversations/service'
import { perDatabase, type Db } from '../db/client'
import { messages } from '../db/schema'
import { validator } from '../shared/validation'
import type { User } from '../users/model'
import { HISTORY_DEFAULT_LIMIT, HistoryQuery, toMessage, type MessagePage } from './model'

const checkHistory = validator(HistoryQuery)

// History pages, one statement per direction. An absent bound is the widest one, so the two
// statements cover every combination of before and after, each a range search of the
// (conversation_id, seq) index (tests/messages/query-plan.test.ts).
const pages = perDatabase((db) => ({ newest: pageQuery(db, 'newest'), oldest: pageQuery(db, 'oldest') }))

function pageQuery(db: Db, from: 'newest' | 'oldest') {
  return db
    .select()
    .from(messages)
    .where(and(eq(messages.conversationId, sql.placeholder('conversationId')), gt(messages.seq, sql.placeholder('after')), lt(messages.seq, sql.placeholder('before'))))
    .orderBy(from === 'newest' ? desc(messages.seq) : asc(messages.seq))
    .limit(sql.placeholder('limit'))
    .prepare()
}

/**
 * A page of history, oldest first. Without `after`: the newest `limit` messages (before `before`,
 * if given). With `after`: the oldest `limit` messages after it (up to `before`, if given), to
 * catch up from the last seq a client saw.
 */
export function history(db: Db, actor: User, conversationId: string, query: unknown): MessagePage {
  const { limit = HISTORY_DEFAULT_LIMIT, before, after } = checkHistory(query)
  conversationService.requireMember(db, actor, conversationId)
  const forward = after !== undefined
  const rows = pages(db)[forward ? 'oldest' : 'newest'].all({
    conversationId,
    after: after ?? 0,
    before: before ?? Number.MAX_SAFE_INTEGER,
    limit: limit + 1,
  })
  const has_more = rows.length > limit
  const page = rows.slice(0, limit)
  if (!forward) page.reverse()
  return { messages: page.map(toMessage), has_more }
}
