import type { Statement } from 'bun:sqlite'
import { Column } from 'drizzle-orm'
import { perDatabase, reportQueries, type Db } from '../db/client'
import { messages } from '../db/schema'
import type { MessageRow } from '../messages/store'
import { pageOf, SearchTimeout, type Position, type SearchStore, type Term } from './store'

/**
 * Search on SQLite: the FTS5 table messages_fts (drizzle/sqlite/0011_search.sql) indexes every
 * message's content, kept in step by triggers in the transaction that writes it.
 *
 * A search walks the matches newest first (FTS5 yields them in rowid order without sorting), keeps
 * those in a conversation the searcher is a member of now and not deleted, until it holds
 * SEARCH_CANDIDATES of them, and ranks those. The walk is lazy and checked against the clock at
 * every row, so the time a query takes is bounded whatever its text: past the timeout it stops
 * and answers SearchTimeout.
 *
 * A candidate's relevance is how many of its words match the query (the STX marks of FTS5's
 * highlight()), not bm25(): bm25 weighs words by how rare they are among all messages, so every
 * message sent anywhere would change the scores, and a cursor taken from one page would no
 * longer fall where it did on the next.
 */

/** A query as FTS5 reads it: each word a quoted string (so nothing in it is syntax), `*` for a prefix; all of them required. */
function ftsQuery(terms: readonly Term[]): string {
  return terms.map((term) => `"${term.text.replaceAll('"', '""')}"${term.prefix ? '*' : ''}`).join(' ')
}

type Candidate = { r: number; id: string; createdAt: number; relevance: number }

const VISIBLE = `m.deleted_at IS NULL AND EXISTS (SELECT 1 FROM conversation_members AS cm WHERE cm.conversation_id = m.conversation_id AND cm.user_id = $userId)`

// The subquery is a co-routine (OFFSET keeps SQLite from flattening it into the outer query), so
// rows come one at a time in rowid order, and highlight() runs once per row that passed the filter.
const candidates = (filter: string) =>
  `SELECT r, id, createdAt, length(h) - length(replace(h, char(2), '')) AS relevance FROM (
    SELECT messages_fts.rowid AS r, m.id AS id, m.created_at AS createdAt, highlight(messages_fts, 0, char(2), char(3)) AS h
    FROM messages_fts JOIN messages AS m ON m.rowid = messages_fts.rowid
    WHERE messages_fts MATCH $match AND ${VISIBLE}${filter}
    ORDER BY messages_fts.rowid DESC LIMIT -1 OFFSET 0
  )`

/** A stored message's columns from `m`, named as MessageRow's fields. */
const MESSAGE_COLUMNS = (Object.keys(messages) as Array<keyof typeof messages>)
  .filter((key) => (messages[key] as unknown) instanceof Column)
  .map((key) => `m.${(messages[key] as Column).name} AS ${key}`)
  .join(', ')

// The page's messages, read again with the filter (in the same transaction as the candidates).
const PAGE = `SELECT messages_fts.rowid AS r, ${MESSAGE_COLUMNS}, snippet(messages_fts, 0, char(2), char(3), '…', 24) AS snippet
  FROM messages_fts JOIN messages AS m ON m.rowid = messages_fts.rowid
  WHERE messages_fts MATCH $match AND messages_fts.rowid IN (SELECT value FROM json_each($rowids)) AND ${VISIBLE}`

type Params = { match: string; userId: string; conversationId?: string }

const statements = perDatabase((db) => ({
  everywhere: db.$client.prepare<Candidate, [Params]>(candidates('')),
  inConversation: db.$client.prepare<Candidate, [Params]>(candidates(' AND m.conversation_id = $conversationId')),
  page: db.$client.prepare<MessageRow & { r: number; snippet: string }, { match: string; userId: string; rowids: string }>(PAGE),
}))

/** Walks the candidates (see above) until there are `wanted` of them; SearchTimeout once `timeoutMs` has passed. */
function collect(statement: Statement<Candidate, [Params]>, params: Params, wanted: number, timeoutMs: number): Candidate[] {
  const deadline = performance.now() + timeoutMs
  const found: Candidate[] = []
  for (const row of statement.iterate(params)) {
    found.push(row)
    if (found.length >= wanted) break
    if (performance.now() > deadline) throw new SearchTimeout(timeoutMs)
  }
  // Not one row arrived before the clock ran out (a query whose first match takes long to find).
  if (performance.now() > deadline) throw new SearchTimeout(timeoutMs)
  return found
}

export function sqliteSearchStore(db: Db): SearchStore {
  return {
    async search({ userId, conversationId, terms, after, limit, candidates: wanted, timeoutMs }) {
      const { everywhere, inConversation, page: pageStatement } = statements(db)
      const match = ftsQuery(terms)
      // One read transaction: the page's messages are read from the same snapshot as the candidates.
      return db.$client.transaction(() => {
        const started = performance.now()
        let found: Candidate[]
        try {
          found = conversationId === null ? collect(everywhere, { match, userId }, wanted, timeoutMs) : collect(inConversation, { match, userId, conversationId }, wanted, timeoutMs)
        } finally {
          // iterate() is not timed by the connection's observers (db/client.ts): told here, as one read.
          reportQueries(db.$client, { statements: [['select', (performance.now() - started) / 1000]], transactions: [] })
        }
        const ranked = found.map((c) => ({ r: c.r, position: { relevance: c.relevance, createdAt: c.createdAt, id: c.id } satisfies Position }))
        const { page, next } = pageOf(ranked, after, limit)
        if (page.length === 0) return { hits: [], next }
        const rows = new Map(pageStatement.all({ match, userId, rowids: JSON.stringify(page.map((c) => c.r)) }).map((row) => [row.r, row]))
        const hits = page.flatMap(({ r, position }) => {
          const found = rows.get(r)
          if (!found) return []
          const { r: _, snippet, ...row } = found
          return [{ row, position, snippet }]
        })
        return { hits, next }
      })()
    },
  }
}
