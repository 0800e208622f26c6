import { Elysia } from 'elysia'
import { signInPage } from '../../views/auth'
import { chatPage, composer, conversationPage, loadOlder, messagesUpsert, type ComposerState, type GroupFormState } from '../../views/chat'
import { html } from '../../views/html'
import { page } from '../../views/layout'
import * as auth from '../auth/service'
import * as conversations from '../conversations/service'
import type { AppDeps } from '../deps'
import * as messages from '../messages/service'
import { clientIp } from '../shared/http'
import { actingUser } from '../observability/requests'
import { describeIssues, DomainError, Invalid } from '../shared/errors'
import { newId } from '../shared/ids'
import type { User } from '../users/model'
import * as users from '../users/service'
import { isHttps, newNonce, pageCsp, requireSameOrigin } from './security'
import { browserSession, endSession, sessionUser, startSession } from './session'

const SAFE_METHODS = new Set(['GET', 'HEAD'])

type Form = Record<string, unknown>
type Headers = Record<string, string | number>

const field = (body: unknown, name: string): unknown => (body && typeof body === 'object' ? (body as Form)[name] : undefined)
const text = (body: unknown, name: string): string => {
  const value = field(body, name)
  return typeof value === 'string' ? value : ''
}

/** A fragment for htmx: no page, so no nonce is needed. */
function fragment(set: { headers: Headers; status?: unknown }, body: string, status = 200) {
  set.headers['content-type'] = 'text/html; charset=utf-8'
  set.headers['cache-control'] = 'no-store'
  set.status = status
  return body
}

/** A whole page: a fragment's headers plus the page's CSP with its own nonce. */
function htmlResponse(set: { headers: Headers; status?: unknown }, body: string, nonce: string, status = 200) {
  set.headers['content-security-policy'] = pageCsp(nonce)
  return fragment(set, body, status)
}

/** A refusal as the web UI says it: field issues named by the form's labels, anything else as it is. */
const errorText = (error: DomainError, labels: Readonly<Record<string, string>> = {}) =>
  error.details?.length ? describeIssues(error.details, labels) : error.message

const SIGN_UP_LABELS = { username: 'Username', password: 'Password', full_name: 'Full name' }
const GROUP_LABELS = { title: 'Group name', usernames: 'Participants', member_ids: 'Participants' }
const COMPOSER_LABELS = { content: 'Message', message_id: 'Message id' }

function errorPage(message: string, nonce: string): string {
  return page({
    title: 'Pneumatic',
    nonce,
    body: html`<main class="sign-in"><h1 class="brand">Pneumatic</h1><div class="card"><p class="form-error" role="alert">${message}</p><p><a href="/">Back to your conversations</a></p></div></main>`,
  })
}

/** The web UI: server-rendered pages and fragments over the same services as the API. */
export const uiRoutes = (deps: AppDeps) => {
  async function renderChat(
    me: User,
    nonce: string,
    open?: { id: string; composer?: ComposerState },
    groupForm?: GroupFormState,
    listQuery: { cursor?: string } = {},
  ): Promise<string> {
    return chatPage({
      me,
      nonce,
      conversations: await conversations.pageFor(deps.store, me, listQuery),
      users: await users.listExcept(deps.store, me),
      groupForm,
      open: open && {
        record: await conversations.get(deps.store, me, open.id),
        page: await messages.history(deps.store, me, open.id, {}),
        composer: open.composer ?? { messageId: newId() },
      },
    })
  }

  /** The browser's user, if its session cookies hold one; named in the request's log line. */
  async function signedIn(request: Request, cookie: Parameters<typeof sessionUser>[1], secure: boolean): Promise<User | null> {
    const me = await sessionUser(deps, cookie, secure)
    if (me) actingUser(request, me.id)
    return me
  }

  return (
    new Elysia({ detail: { hide: true } })
      .derive(({ request }) => ({ secure: isHttps(request, deps.config.trustProxyHops), nonce: newNonce(), htmx: request.headers.has('hx-request') }))
      // Every form post here is authenticated by cookie (or sets one): it must come from our pages.
      // GET and HEAD (which Elysia answers with the GET handler, body dropped) change nothing.
      .onBeforeHandle(({ request }) => {
        if (!SAFE_METHODS.has(request.method)) requireSameOrigin(request, deps.config.trustProxyHops)
      })
      .get('/', async ({ request, cookie, query, secure, nonce, set }) => {
        const me = await signedIn(request, cookie, secure)
        if (!me) return htmlResponse(set, signInPage({ tab: query.tab === 'signup' ? 'signup' : 'login', nonce }), nonce)
        // ?cursor= is where "Load more conversations" leads without JavaScript: the sidebar shows that page.
        try {
          return htmlResponse(set, await renderChat(me, nonce, undefined, undefined, query.cursor === undefined ? {} : { cursor: query.cursor }), nonce)
        } catch (error) {
          if (!(error instanceof DomainError)) throw error
          return htmlResponse(set, errorPage(errorText(error), nonce), nonce, error.status)
        }
      })
      .post('/ui/login', async ({ body, request, server, cookie, secure, nonce, set, redirect }) => {
        try {
          const credentials = { username: text(body, 'username'), password: text(body, 'password') }
          startSession(cookie, await auth.login(deps, credentials, clientIp(request, server, deps.config.trustProxyHops)), deps, secure)
          return redirect('/', 303)
        } catch (error) {
          if (!(error instanceof DomainError)) throw error
          const message = error.status === 401 || error.status === 429 ? error.message : 'Enter your username and password'
          return htmlResponse(set, signInPage({ tab: 'login', nonce, error: message, username: text(body, 'username') }), nonce, error.status)
        }
      })
      .post('/ui/signup', async ({ body, request, server, cookie, secure, nonce, set, redirect }) => {
        const input = { username: text(body, 'username'), password: text(body, 'password'), full_name: text(body, 'full_name') || null }
        try {
          const user = await auth.signup(deps, input, clientIp(request, server, deps.config.trustProxyHops))
          startSession(cookie, await auth.openSession(deps, user.id), deps, secure)
          return redirect('/', 303)
        } catch (error) {
          if (!(error instanceof DomainError)) throw error
          const view = { tab: 'signup' as const, nonce, error: errorText(error, SIGN_UP_LABELS), username: input.username, fullName: input.full_name ?? '' }
          return htmlResponse(set, signInPage(view), nonce, error.status)
        }
      })
      .post('/ui/logout', async ({ cookie, secure, redirect }) => {
        // Ends the session itself, not just this browser's copy of its cookies.
        const caller = await browserSession(deps, cookie, secure)
        if (caller) await auth.logout(deps, caller)
        endSession(cookie, secure)
        return redirect('/', 303)
      })
      // Everything below needs a session; without one, pages go to sign-in and fragments get 401.
      .resolve(async ({ request, cookie, secure }) => ({ me: await signedIn(request, cookie, secure) }))
      .onBeforeHandle(({ me, htmx, set, redirect }) => {
        if (me) return
        if (htmx) {
          set.headers['hx-redirect'] = '/'
          return fragment(set, '', 401)
        }
        return redirect('/', 303)
      })
      .get('/c/:id', async ({ me, params, nonce, set }) => {
        try {
          return htmlResponse(set, await renderChat(me!, nonce, { id: params.id }), nonce)
        } catch (error) {
          if (!(error instanceof DomainError)) throw error
          return htmlResponse(set, errorPage(error.message, nonce), nonce, error.status)
        }
      })
      .get('/c/:id/messages', async ({ me, params, query, set }) => {
        const history = await messages.history(deps.store, me!, params.id, {
          ...(query.before !== undefined ? { before: Number(query.before) } : {}),
          ...(query.after !== undefined ? { after: Number(query.after) } : {}),
        })
        const record = await conversations.get(deps.store, me!, params.id)
        const olderButton = query.before !== undefined ? loadOlder(record, history, true) : ''
        return fragment(set, html`${messagesUpsert(record, history.messages)}${olderButton}`.value)
      })
      .post('/c/:id/messages', async ({ me, params, body, htmx, nonce, set, redirect }) => {
        const state: ComposerState = { messageId: text(body, 'message_id'), content: text(body, 'content') }
        try {
          const { message } = await messages.post(deps, me!, { message_id: state.messageId, conversation_id: params.id, content: state.content })
          if (!htmx) return redirect(`/c/${params.id}`, 303)
          const record = await conversations.get(deps.store, me!, params.id)
          // The message (merged by id with its live push) and a fresh composer with a new message_id.
          return fragment(set, html`${messagesUpsert(record, [message])}${composer(record, { messageId: newId() }, true)}`.value)
        } catch (error) {
          if (!(error instanceof DomainError)) throw error
          state.error = errorText(error, COMPOSER_LABELS)
          if (!htmx) return htmlResponse(set, await renderChat(me!, nonce, { id: params.id, composer: state }), nonce, error.status)
          const record = await conversations.get(deps.store, me!, params.id)
          return fragment(set, composer(record, state, true).value, error.status)
        }
      })
      .post('/ui/direct', async ({ me, body, nonce, set, redirect }) => {
        try {
          const { conversation } = await conversations.create(deps, me!, { member_ids: [field(body, 'user_id')] })
          return redirect(`/c/${conversation.id}`, 303)
        } catch (error) {
          if (!(error instanceof DomainError)) throw error
          return htmlResponse(set, errorPage(error.message, nonce), nonce, error.status)
        }
      })
      .post('/ui/groups', async ({ me, body, nonce, set, redirect }) => {
        const form: GroupFormState = { open: true, title: text(body, 'title'), usernames: text(body, 'usernames') }
        try {
          const names = form.usernames!.split(',').map((n) => n.trim()).filter(Boolean)
          const { found, unknown } = await users.byUsernames(deps.store, names)
          if (unknown.length > 0) throw Invalid.field('usernames', `include ${unknown.length > 1 ? 'unknown users' : 'an unknown user'}: ${unknown.map((u) => `"${u}"`).join(', ')}`)
          const { conversation } = await conversations.create(deps, me!, { title: form.title, member_ids: found.map((u) => u.id), is_group: true })
          return redirect(`/c/${conversation.id}`, 303)
        } catch (error) {
          if (!(error instanceof DomainError)) throw error
          form.error = errorText(error, GROUP_LABELS)
          return htmlResponse(set, await renderChat(me!, nonce, undefined, form), nonce, error.status)
        }
      })
      // The first page (replacing the list, as after a reconnect), or with ?cursor= the next one, appended.
      .get('/ui/sidebar', async ({ me, query, set }) => {
        const listQuery = query.cursor === undefined ? {} : { cursor: query.cursor }
        return fragment(set, conversationPage(await conversations.pageFor(deps.store, me!, listQuery), me!.id, query.cursor !== undefined))
      })
  )
}
