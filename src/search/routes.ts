import { Elysia } from 'elysia'
import { authGuard } from '../auth/guard'
import type { AppDeps } from '../deps'
import { errors, served } from '../shared/http'
import { MAX_QUERY_CHARACTERS, MAX_QUERY_WORDS, MIN_PREFIX_CHARACTERS, SEARCH_CANDIDATES, SEARCH_DEFAULT_LIMIT, SEARCH_MAX_LIMIT, SearchPage, SearchQuery } from './model'
import * as search from './service'

export const searchRoutes = (deps: AppDeps) =>
  new Elysia({ detail: { tags: ['search'] } }).use(authGuard(deps)).get('/search', ({ user, query }) => search.search(deps, user, query), {
    auth: true,
    query: SearchQuery,
    response: { 200: served(SearchPage), ...errors(401, 403, 404, 422, 503) },
    detail: {
      summary: 'Search the messages of your conversations',
      description: [
        'Messages that hold every word of `q`, in the conversations you are a member of now (or in `conversation_id` only: 404 when it does not exist, 403 when you are not a member), as they are now: an edited message is found by its current text, a deleted one never.',
        `Case and diacritics do not matter (\`cafe\` finds "Café", \`café\` finds "cafe"), and a word of ${MIN_PREFIX_CHARACTERS} or more letters also finds the words it starts (\`deplo\` finds "deployment"). Words are split at white space; quotes, \`*\`, \`-\`, \`:\` and the like are never query syntax. At most ${MAX_QUERY_CHARACTERS} characters and ${MAX_QUERY_WORDS} words, with at least one letter or digit: otherwise 422 on \`q\`.`,
        `Most relevant first (the more of its words match), then newest first; the newest ${SEARCH_CANDIDATES.toLocaleString('en-US')} matches are ranked. Each result is the message and a \`snippet\`: HTML, the text escaped, each match in \`<mark>\`.`,
        `At most \`limit\` results (default ${SEARCH_DEFAULT_LIMIT}, at most ${SEARCH_MAX_LIMIT}). Pass \`next_cursor\` back as \`cursor\`, with the same \`q\` and \`conversation_id\`, for the next page; it is null on the last. A cursor is opaque: a malformed one, or one of another search, is 422 on \`cursor\`.`,
        'A search that runs longer than SEARCH_TIMEOUT_MS is stopped: 503 `search_timeout`. Search for longer or more words, or in one conversation.',
      ].join('\n\n'),
    },
  })
