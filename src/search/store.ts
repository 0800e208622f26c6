import { DomainError } from '../shared/errors'
import type { MessageRow } from '../messages/store'

/**
 * One word of a query, as the engine is given it: its text (tokenized by the engine as it
 * tokenized the messages, so a word such as "e-mail" or "1.5" is found as it was written), and
 * whether it also finds the words it starts.
 */
export type Term = { text: string; prefix: boolean }

/** Where a result stands in the order of a search: the page after one starts past it. */
export type Position = { relevance: number; createdAt: number; id: string }

/**
 * A search of the messages `userId` may see now (in a conversation they are a member of, not
 * deleted), holding every term: the newest `candidates` of them ranked, the `limit` after `after`
 * returned. Past `timeoutMs` the search stops with SearchTimeout.
 */
type SearchInput = {
  userId: string
  conversationId: string | null
  terms: readonly Term[]
  after: Position | null
  limit: number
  candidates: number
  timeoutMs: number
}

/**
 * One match: the message as it is now, its position, and the engine's snippet as plain text with
 * MATCH_START and MATCH_END around each match (null when the engine's could not be read back).
 */
type SearchHit = { row: MessageRow; position: Position; snippet: string | null }

export type SearchStore = {
  /**
   * The page of matches, best first, and where the next page starts: null when no match (among the
   * ranked candidates) follows.
   */
  search(input: SearchInput): Promise<{ hits: SearchHit[]; next: Position | null }>
}

/** Around each match in an engine's snippet: characters the snippet is checked for (service.ts) before it becomes HTML. */
export const MATCH_START = '\u0002'
export const MATCH_END = '\u0003'

/** The order of results: more relevant first, then newer, then the larger id (a total order, so pages neither repeat nor skip). */
function compareResults(a: Position, b: Position): number {
  if (a.relevance !== b.relevance) return b.relevance - a.relevance
  if (a.createdAt !== b.createdAt) return b.createdAt - a.createdAt
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0
}

/**
 * The page of candidates after `after` in result order, and where the next page starts (null: none
 * follows): the one ranking both engines use, on the candidates each engine found and scored.
 */
export function pageOf<C extends { position: Position }>(candidates: readonly C[], after: Position | null, limit: number): { page: C[]; next: Position | null } {
  const ordered = candidates.filter((c) => after === null || compareResults(after, c.position) < 0).sort((a, b) => compareResults(a.position, b.position))
  const page = ordered.slice(0, limit)
  return { page, next: ordered.length > limit ? page.at(-1)!.position : null }
}

/** The search ran past its time: a clear answer (503, `search_timeout`), never a 500. */
export class SearchTimeout extends DomainError {
  constructor(timeoutMs: number) {
    super(503, 'search_timeout', `The search took longer than ${timeoutMs} ms and was stopped: search for longer or more words, or in one conversation`)
  }
}
