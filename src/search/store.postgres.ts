import type postgres from 'postgres'
import type { PostgresDb } from '../db/postgres/connection'
import { driverError } from '../db/storage'
import type { MessageRow } from '../messages/store'
import { MATCH_END, MATCH_START, pageOf, SearchTimeout, type SearchStore, type Term } from './store'

/**
 * Search on PostgreSQL: full-text search over the GIN index messages_search_idx
 * (drizzle/postgres/0004_search.sql), an index of the expression VECTOR, which every query here
 * repeats word for word so that the planner uses it.
 *
 * A search reads the newest SEARCH_CANDIDATES matches the searcher may see (a member of their
 * conversation now, not deleted), ranks them, then reads the page's messages again with their
 * headlines, in one transaction under a statement_timeout: past it the query is cancelled and
 * answers SearchTimeout. A candidate's relevance is, as on SQLite, how many of its words match a
 * word of the query: the positions of its lexemes that match the query's words taken one at a
 * time (ts_rank weighs a word's repeats by a curve of its own, and the other engine cannot).
 */

const VECTOR = (content: string) => `to_tsvector('pneumatic_search', replace(${content}, '<', ' '))`
const QUERY = `to_tsquery('pneumatic_search', $1)`

/**
 * A query as to_tsquery reads it: each word quoted (so nothing in it is an operator; its text is
 * split into words by the parser as the messages were), `:*` for a prefix; all of them required
 * (`&`), or any of them (`|`). `<` is a space, as in VECTOR.
 */
function tsQuery(terms: readonly Term[], operator: '&' | '|'): string {
  return terms.map((term) => `'${term.text.replaceAll('<', ' ').replaceAll('\\', '\\\\').replaceAll("'", "''")}'${term.prefix ? ':*' : ''}`).join(` ${operator} `)
}

const VISIBLE = `m.deleted_at IS NULL AND EXISTS (SELECT 1 FROM conversation_members AS cm WHERE cm.conversation_id = m.conversation_id AND cm.user_id = $2)`

// Each lexeme of the message alone against any word of the query ($4): how many of its words match one.
const RELEVANCE = `(SELECT coalesce(sum(coalesce(array_length(v.positions, 1), 1)), 0)::int FROM unnest(${VECTOR('c.content')}) AS v
    WHERE array_to_tsvector(ARRAY[v.lexeme]) @@ to_tsquery('pneumatic_search', $4))`

const candidates = (filter: string) =>
  `SELECT c.id, c.created_at AS "createdAt", ${RELEVANCE} AS relevance FROM (
    SELECT m.id, m.created_at, m.content FROM messages AS m
    WHERE ${VECTOR('m.content')} @@ ${QUERY} AND ${VISIBLE}${filter}
    ORDER BY m.created_at DESC, m.id DESC LIMIT $3
  ) AS c`
const EVERYWHERE = candidates('')
const IN_CONVERSATION = candidates(' AND m.conversation_id = $5')

const MESSAGE_COLUMNS = `m.id, m.conversation_id AS "conversationId", m.seq, m.sender_id AS "senderId", m.message_id AS "messageId", m.content, m.created_at AS "createdAt", m.edited_at AS "editedAt", m.deleted_at AS "deletedAt", m.reply_to AS "replyTo", m.reactions`

/** Where `<` stands in the text given to ts_headline, whose parser would drop what looks like a tag. */
const LESS_THAN = '\u0004'
const HEADLINE_OPTIONS = `StartSel=${MATCH_START}, StopSel=${MATCH_END}, MaxWords=35, MinWords=15, ShortWord=0`

// The page's messages, read again with the filter (in the transaction of the candidates).
const PAGE = `SELECT ${MESSAGE_COLUMNS}, ts_headline('pneumatic_search', replace(m.content, '<', chr(4)), ${QUERY}, $4) AS headline
  FROM messages AS m WHERE m.id = ANY($3::text[]) AND ${VECTOR('m.content')} @@ ${QUERY} AND ${VISIBLE}`

const QUERY_CANCELED = '57014'

/**
 * The headline as the other engine's snippet is: `<` where it was, and `…` where the text was cut.
 * Null when it cannot be read back for sure (the message itself holds the stand-in for `<`).
 */
function snippetOf(content: string, headline: string): string | null {
  if (content.includes(LESS_THAN)) return null
  const text = headline.replaceAll(LESS_THAN, '<')
  const plain = text.replaceAll(MATCH_START, '').replaceAll(MATCH_END, '')
  const at = content.indexOf(plain)
  if (at === -1) return text
  return `${at > 0 ? '…' : ''}${text}${at + plain.length < content.length ? '…' : ''}`
}

const run = <Row>(tx: postgres.TransactionSql, text: string, params: unknown[]) => tx.unsafe<Row[]>(text, params as never[], { prepare: true })

export function postgresSearchStore(db: PostgresDb): SearchStore {
  return {
    async search({ userId, conversationId, terms, after, limit, candidates: wanted, timeoutMs }) {
      const query = tsQuery(terms, '&')
      const anyWord = tsQuery(terms, '|')
      try {
        return await db.$client.begin(async (tx) => {
          await tx.unsafe(`SET LOCAL statement_timeout = ${Math.max(1, Math.floor(timeoutMs))}`)
          const found =
            conversationId === null
              ? await run<{ id: string; createdAt: number; relevance: number }>(tx, EVERYWHERE, [query, userId, wanted, anyWord])
              : await run<{ id: string; createdAt: number; relevance: number }>(tx, IN_CONVERSATION, [query, userId, wanted, anyWord, conversationId])
          const { page, next } = pageOf(
            found.map((c) => ({ position: { relevance: c.relevance, createdAt: c.createdAt, id: c.id } })),
            after,
            limit,
          )
          if (page.length === 0) return { hits: [], next }
          const rows = await run<MessageRow & { headline: string }>(tx, PAGE, [query, userId, page.map((c) => c.position.id), HEADLINE_OPTIONS])
          const byId = new Map(rows.map((row) => [row.id, row]))
          const hits = page.flatMap(({ position }) => {
            const found = byId.get(position.id)
            if (!found) return []
            const { headline, ...row } = found
            return [{ row, position, snippet: snippetOf(row.content, headline) }]
          })
          return { hits, next }
        })
      } catch (error) {
        if ((driverError(error) as { code?: unknown }).code === QUERY_CANCELED) throw new SearchTimeout(timeoutMs)
        throw error
      }
    },
  }
}
