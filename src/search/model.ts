import { t } from 'elysia'
import { Message } from '../messages/model'

/** A query longer than this (in characters) is refused: 422 on `q`. */
export const MAX_QUERY_CHARACTERS = 200
/** A query with more words than this is refused: 422 on `q`. Each word costs the engine a list to read. */
export const MAX_QUERY_WORDS = 8
/** A word this long or longer also finds the words it starts (`deplo` finds "deployment"); a shorter one only itself. */
export const MIN_PREFIX_CHARACTERS = 2
/**
 * At most this many matches are ranked, the newest the searcher may see: the work of a query is
 * bounded whatever its text, and one page never ranks the whole history.
 */
export const SEARCH_CANDIDATES = 1000

export const SEARCH_DEFAULT_LIMIT = 20
export const SEARCH_MAX_LIMIT = 50

export const SearchQuery = t.Object({
  q: t.String({
    title: 'q',
    description: `The words to find, at most ${MAX_QUERY_CHARACTERS} characters and ${MAX_QUERY_WORDS} words; a message must hold every one. Case and diacritics do not matter (\`cafe\` finds "Café"), and a word of ${MIN_PREFIX_CHARACTERS} or more characters also finds the words it starts (\`deplo\` finds "deployment"). Punctuation and operators are words' edges, never syntax.`,
    examples: ['deplo friday'],
  }),
  conversation_id: t.Optional(t.String({ title: 'conversation_id', maxLength: 128, description: 'Only this conversation (you must be a member)' })),
  limit: t.Optional(
    t.Integer({
      title: 'limit',
      minimum: 1,
      maximum: SEARCH_MAX_LIMIT,
      default: SEARCH_DEFAULT_LIMIT,
      error: `must be a whole number from 1 to ${SEARCH_MAX_LIMIT}`,
      description: 'At most this many results',
    }),
  ),
  cursor: t.Optional(
    t.String({
      title: 'cursor',
      pattern: '^[A-Za-z0-9_-]{1,400}$',
      error: 'must be the next_cursor of an earlier page of the same search',
      description: 'The `next_cursor` of the previous page of the same search; without it, the first page',
    }),
  ),
})
export type SearchQuery = typeof SearchQuery.static

const SearchResult = t.Object({
  message: Message,
  snippet: t.String({
    description:
      'The part of the message around what matched, as HTML: the text escaped (`<` is `&lt;`), each match in `<mark>`…`</mark>`, `…` where the text was cut. Safe to insert as it is.',
    examples: ['We start the <mark>deployment</mark> on Friday…'],
  }),
})

export const SearchPage = t.Object({
  results: t.Array(SearchResult, { description: 'Most relevant first (the more of its words match the query, the more relevant), then newest first' }),
  next_cursor: t.Nullable(t.String({ description: 'Pass as `cursor` for the next page; null on the last page' })),
})
export type SearchPage = typeof SearchPage.static
