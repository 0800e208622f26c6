import type { Config } from '../config'
import * as conversationService from '../conversations/service'
import type { Store } from '../db/store'
import { toMessage } from '../messages/model'
import { Invalid } from '../shared/errors'
import { isPossibleId } from '../shared/ids'
import { checkMaxCharacters, validator } from '../shared/validation'
import type { User } from '../users/model'
import { MAX_QUERY_CHARACTERS, MAX_QUERY_WORDS, MIN_PREFIX_CHARACTERS, SEARCH_CANDIDATES, SEARCH_DEFAULT_LIMIT, SearchQuery, type SearchPage } from './model'
import { MATCH_END, MATCH_START, type Position, type Term } from './store'

export type Deps = { store: Store; config: Pick<Config, 'searchTimeoutMs'> }

const checkQuery = validator(SearchQuery)

const LETTER_OR_DIGIT = /[\p{L}\p{N}]/u

/**
 * The words of a query, for the engine to find: split at white space, each word handed over whole
 * (the engine splits it as it split the messages, so "e-mail" or "1.5" is found as written, and
 * nothing in it is query syntax); words without a letter or digit are no words; a word with
 * MIN_PREFIX_CHARACTERS letters and digits also finds the words it starts. 422 on `q` for a
 * query with no word, or longer than MAX_QUERY_CHARACTERS or MAX_QUERY_WORDS words.
 */
export function searchTerms(q: string): Term[] {
  checkMaxCharacters('q', q, MAX_QUERY_CHARACTERS)
  if (q.trim() === '') throw Invalid.field('q', 'must not be empty')
  const words = [...new Set(q.split(/\s+/u).filter((word) => LETTER_OR_DIGIT.test(word)))]
  if (words.length === 0) throw Invalid.field('q', 'must hold a word to search for (letters or digits)')
  if (words.length > MAX_QUERY_WORDS) throw Invalid.field('q', `must have at most ${MAX_QUERY_WORDS} words`)
  return words.map((text) => ({ text, prefix: [...text.matchAll(/[\p{L}\p{N}]/gu)].length >= MIN_PREFIX_CHARACTERS }))
}

const BAD_CURSOR = 'must be the next_cursor of an earlier page of the same search'

/** Which search a cursor belongs to: the same words in the same place. */
const fingerprint = (terms: readonly Term[], conversationId: string | null): string => Bun.hash(JSON.stringify([terms, conversationId])).toString(36)

/** Opaque to clients: where the previous page ended, and of which search. */
const encodeCursor = (at: Position, search: string): string => Buffer.from(JSON.stringify([at.relevance, at.createdAt, at.id, search])).toString('base64url')

function decodeCursor(cursor: string, search: string): Position {
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw Invalid.field('cursor', BAD_CURSOR)
  }
  if (!Array.isArray(parsed) || parsed.length !== 4) throw Invalid.field('cursor', BAD_CURSOR)
  const [relevance, createdAt, id, of] = parsed as unknown[]
  if (typeof relevance !== 'number' || !Number.isFinite(relevance) || !Number.isSafeInteger(createdAt) || typeof id !== 'string' || !isPossibleId(id) || of !== search) {
    throw Invalid.field('cursor', BAD_CURSOR)
  }
  const position = { relevance, createdAt: createdAt as number, id }
  // Base64 decoding skips what it cannot read: only the exact encoding of a position is one.
  if (encodeCursor(position, search) !== cursor) throw Invalid.field('cursor', BAD_CURSOR)
  return position
}

const FALLBACK_CHARACTERS = 160

/** The escaped start of a message, for when the engine's snippet cannot be trusted. */
function plainSnippet(content: string): string {
  const characters = Array.from(content.replaceAll(MATCH_START, '').replaceAll(MATCH_END, ''))
  return Bun.escapeHTML(characters.length > FALLBACK_CHARACTERS ? `${characters.slice(0, FALLBACK_CHARACTERS).join('')}…` : characters.join(''))
}

const MARKS = new RegExp(`([${MATCH_START}${MATCH_END}])`)

/**
 * An engine's snippet as HTML: the text escaped first, then each match wrapped in <mark>. The
 * engine's output is never taken as markup: the marks must open and close in turn, and a message
 * that itself holds a mark character (it is text, and may) cannot tell its own from the engine's,
 * so either way the message's start is shown escaped, without marks.
 */
export function snippetHtml(snippet: string | null, content: string): string {
  if (snippet === null || content.includes(MATCH_START) || content.includes(MATCH_END)) return plainSnippet(content)
  let html = ''
  let open = false
  for (const part of snippet.split(MARKS)) {
    if (part === MATCH_START || part === MATCH_END) {
      if (open === (part === MATCH_START)) return plainSnippet(content)
      open = !open
      html += open ? '<mark>' : '</mark>'
    } else html += Bun.escapeHTML(part)
  }
  return open ? plainSnippet(content) : html
}

/**
 * The messages the actor may see now that hold every word of `q` (see searchTerms), best first:
 * the more of a message's words match, the better, then the newer. Only conversations they are a
 * member of at this moment (read with the search, not from a cache), never a deleted message, and
 * the current text of an edited one. With `conversation_id`, that conversation only (404 when it
 * does not exist, 403 when they are not a member). At most `limit` (default 20) a page; the page
 * after is `cursor`'s. The newest SEARCH_CANDIDATES matches are ranked, within
 * config.searchTimeoutMs (else 503 search_timeout).
 */
export async function search(deps: Deps, actor: User, input: unknown): Promise<SearchPage> {
  const query = checkQuery(input)
  const terms = searchTerms(query.q)
  const conversationId = query.conversation_id ?? null
  const limit = query.limit ?? SEARCH_DEFAULT_LIMIT
  const search = fingerprint(terms, conversationId)
  const after = query.cursor === undefined ? null : decodeCursor(query.cursor, search)
  if (conversationId !== null) await conversationService.requireMember(deps.store, actor, conversationId)
  const { hits, next } = await deps.store.search.search({
    userId: actor.id,
    conversationId,
    terms,
    after,
    limit,
    candidates: SEARCH_CANDIDATES,
    timeoutMs: deps.config.searchTimeoutMs,
  })
  return {
    results: hits.map((hit) => ({ message: toMessage(hit.row), snippet: snippetHtml(hit.snippet, hit.row.content) })),
    next_cursor: next === null ? null : encodeCursor(next, search),
  }
}
