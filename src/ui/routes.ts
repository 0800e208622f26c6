import { Elysia } from 'elysia'
import { signInPage } from '../../views/auth'
import {
  catchUp,
  chatPage,
  composer,
  conversationPage,
  flash,
  groupAnswer,
  loadOlder,
  messagesUpsert,
  noLongerMember,
  type ComposerState,
  type GroupFormState,
  type HeaderState,
  type OpenConversation,
} from '../../views/chat'
import { emojiNamed } from '../../views/emoji'
import { html } from '../../views/html'
import { page } from '../../views/layout'
import { presencePush } from '../../views/presence'
import { searchItems, searchMoreRefused, searchResults, type SearchView } from '../../views/search'
import type { MessageState } from '../../views/message'
import * as auth from '../auth/service'
import { changePage } from '../conversations/changes'
import * as conversations from '../conversations/service'
import type { AppDeps } from '../deps'
import type { Message } from '../messages/model'
import * as messages from '../messages/service'
import { clientIp, download } from '../shared/http'
import { actingUser } from '../observability/requests'
import { describeIssues, DomainError, Forbidden, Invalid } from '../shared/errors'
import { newId } from '../shared/ids'
import type { User } from '../users/model'
import * as users from '../users/service'
import { isHttps, newNonce, pageCsp, requireSameOrigin } from './security'
import { searchView } from './search'
import { browserSession, endSession, sessionUser, startSession } from './session'
import { contextFor, messagesIn, shownTo, viewerOf, visibleMessage, type Context, type Shown } from './viewers'

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
const COMPOSER_LABELS = { content: 'Message', message_id: 'Message id', reply_to: 'Reply' }
const MESSAGE_LABELS = { content: 'Message', emoji: 'Reaction' }
const MEMBER_LABELS = { usernames: 'Usernames', member_ids: 'Usernames', title: 'Group name' }

function errorPage(message: string, nonce: string): string {
  return page({
    title: 'Pneumatic',
    nonce,
    body: html`<main class="sign-in"><h1 class="brand">Pneumatic</h1><div class="card"><p class="form-error" role="alert">${message}</p><p><a href="/">Back to your conversations</a></p></div></main>`,
  })
}

/** Comma-separated usernames as user ids; unknown ones are refused on the field, naming them. */
async function usernamesToIds(deps: AppDeps, raw: string): Promise<string[]> {
  const names = raw
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean)
  const { found, unknown } = await users.byUsernames(deps.store, names)
  if (unknown.length > 0) throw Invalid.field('usernames', `include ${unknown.length > 1 ? 'unknown users' : 'an unknown user'}: ${unknown.map((u) => `"${u}"`).join(', ')}`)
  return found.map((u) => u.id)
}

/** "1" adds the reaction, "0" takes it back; anything else is refused like any field. */
function reactionAdded(body: unknown): boolean {
  const added = text(body, 'added')
  if (added !== '1' && added !== '0') throw Invalid.field('added', 'must be 1 (react) or 0 (take the reaction back)')
  return added === '1'
}

/** The emoji of a reaction form: as typed, or the one a name typed in the search field stands for. */
function reactionEmoji(body: unknown): string {
  const typed = text(body, 'emoji').trim()
  return emojiNamed(typed) ?? typed
}

/** What a page may open with: a conversation, and what its forms were sent with. */
type OpenRequest = {
  id: string
  composer?: Omit<ComposerState, 'replyTo'> & { replyTo?: string }
  header?: HeaderState
  states?: ReadonlyMap<string, MessageState>
  /** A message shown in its edit form (the Edit link without JavaScript). */
  edit?: string
}

/** The message a reply would answer, if the page can show it as one: in the conversation and not deleted. */
function replyTarget(context: Context, id: string | undefined): ComposerState['replyTo'] {
  const message = id === undefined ? undefined : context.quotes.get(id)
  if (!message || message.deleted_at !== null) return undefined
  return { message, sender: context.people.get(message.sender_id) }
}

/** The web UI: server-rendered pages and fragments over the same services as the API. */
export const uiRoutes = (deps: AppDeps) => {
  const { store } = deps

  async function openView(me: User, open: OpenRequest): Promise<OpenConversation> {
    // The conversation first: its last_event_seq is then the page's position, and the messages read
    // after it show at least that (see Viewer.version).
    const shown = await shownTo(store, me, open.id)
    const history = await messages.history(store, me, open.id, {})
    const { reads } = await conversations.readingOf(store, open.id, [])
    const replyTo = open.composer?.replyTo
    const context = await contextFor(store, shown, history.messages, shown.record.lastEventSeq, replyTo ? [replyTo] : [])
    const states = new Map(open.states)
    if (open.edit !== undefined) states.set(open.edit, { editing: true, ...states.get(open.edit) })
    return {
      viewer: viewerOf(context, me.id),
      page: history,
      composer: { messageId: newId(), ...open.composer, replyTo: replyTarget(context, replyTo) },
      header: open.header,
      states,
      reads,
    }
  }

  async function renderChat(me: User, nonce: string, open?: OpenRequest, groupForm?: GroupFormState, listQuery: { cursor?: string } = {}, search?: SearchView): Promise<string> {
    return chatPage({
      search,
      me,
      nonce,
      conversations: await conversations.pageFor(store, me, listQuery),
      users: await users.listExcept(deps, me),
      groupForm,
      open: open && (await openView(me, open)),
    })
  }

  /** The viewer of a conversation's messages, at the conversation's last_event_seq (read before the messages were). */
  async function viewerFor(me: User, shown: Shown, shownMessages: readonly Message[], version = shown.record.lastEventSeq) {
    return viewerOf(await contextFor(store, shown, shownMessages, version), me.id)
  }

  /** One message, answered to its viewer's own action: replaced where it is shown, its forms closed (or as `state` says). */
  async function messageAnswer(me: User, id: string, state?: MessageState): Promise<{ markup: string; conversationId: string }> {
    const { shown, message } = await visibleMessage(store, me, id)
    const viewer = await viewerFor(me, shown, [message])
    const states = state ? new Map([[id, state]]) : undefined
    return { markup: messagesUpsert(viewer, [message], { existing: true, fresh: true, ...(states ? { states } : {}) }).value, conversationId: shown.record.id }
  }

  /** The group's header and row after the viewer's own change, or with their refusal. */
  async function groupAnswerFor(me: User, conversationId: string, state?: HeaderState): Promise<string> {
    const shown = await shownTo(store, me, conversationId)
    return groupAnswer(await viewerFor(me, shown, []), state).value
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
      // ?reply_to= and ?edit= are where Reply and Edit lead without JavaScript.
      .get('/c/:id', async ({ me, params, query, nonce, set }) => {
        try {
          const open: OpenRequest = { id: params.id, ...(query.reply_to ? { composer: { messageId: newId(), replyTo: query.reply_to } } : {}), ...(query.edit ? { edit: query.edit } : {}) }
          return htmlResponse(set, await renderChat(me!, nonce, open), nonce)
        } catch (error) {
          if (!(error instanceof DomainError)) throw error
          return htmlResponse(set, errorPage(error.message, nonce), nonce, error.status)
        }
      })
      .get('/c/:id/messages', async ({ me, params, query, set }) => {
        const shown = await shownTo(store, me!, params.id)
        const history = await messages.history(store, me!, params.id, {
          ...(query.before !== undefined ? { before: Number(query.before) } : {}),
          ...(query.after !== undefined ? { after: Number(query.after) } : {}),
        })
        const olderButton = query.before !== undefined ? loadOlder(shown.record, history, true) : ''
        return fragment(set, html`${messagesUpsert(await viewerFor(me!, shown, history.messages), history.messages)}${olderButton}`.value)
      })
      // The Export button's download: the API's export, for the session's user.
      .get('/c/:id/export', async ({ me, params, nonce, set }) => {
        try {
          return download(await messages.exportConversation(deps, me!, params.id))
        } catch (error) {
          if (!(error instanceof DomainError)) throw error
          return htmlResponse(set, errorPage(error.message, nonce), nonce, error.status)
        }
      })
      .post('/c/:id/messages', async ({ me, params, body, htmx, nonce, set, redirect }) => {
        const replyTo = text(body, 'reply_to') || undefined
        const state = { messageId: text(body, 'message_id'), content: text(body, 'content'), ...(replyTo ? { replyTo } : {}) }
        try {
          const { message } = await messages.post(deps, me!, { message_id: state.messageId, conversation_id: params.id, content: state.content, reply_to: replyTo ?? null })
          if (!htmx) return redirect(`/c/${params.id}`, 303)
          const { shown, message: sent } = await visibleMessage(store, me!, message.id)
          // The message (merged by id with its live push) and a fresh composer with a new message_id.
          return fragment(set, html`${messagesUpsert(await viewerFor(me!, shown, [sent]), [sent])}${composer(params.id, { messageId: newId() }, true)}`.value)
        } catch (error) {
          if (!(error instanceof DomainError)) throw error
          const composerState = { ...state, error: errorText(error, COMPOSER_LABELS) }
          if (!htmx) return htmlResponse(set, await renderChat(me!, nonce, { id: params.id, composer: composerState }), nonce, error.status)
          const shown = await shownTo(store, me!, params.id)
          const context = await contextFor(store, shown, [], shown.record.lastEventSeq, replyTo ? [replyTo] : [])
          return fragment(set, composer(params.id, { ...composerState, replyTo: replyTarget(context, replyTo) }, true).value, error.status)
        }
      })
      // The composer again, keeping what was typed and its message_id: replying to a message, or not (Cancel).
      .get('/c/:id/composer', async ({ me, params, query, htmx, set, redirect }) => {
        const replyTo = query.reply_to || undefined
        if (!htmx) return redirect(replyTo ? `/c/${params.id}?reply_to=${encodeURIComponent(replyTo)}#composer` : `/c/${params.id}`, 303)
        const shown = await shownTo(store, me!, params.id)
        const context = await contextFor(store, shown, [], shown.record.lastEventSeq, replyTo ? [replyTo] : [])
        const target = replyTarget(context, replyTo)
        const state: ComposerState = {
          messageId: query.message_id || newId(),
          content: query.content ?? '',
          ...(target ? { replyTo: target } : {}),
          ...(replyTo && !target ? { error: 'That message can no longer be replied to' } : {}),
        }
        return fragment(set, composer(params.id, state, true).value)
      })
      /**
       * What the page missed from its position on (`after`, an event_seq), after a dropped
       * connection: the change stream (changePage) rendered. X-Has-More says another page follows;
       * 410 that the changes are past retention (the page reloads); 403 that the viewer is no
       * longer in the conversation, which the page then says.
       */
      .get('/c/:id/events', async ({ me, params, query, set }) => {
        const after = query.after === undefined ? 0 : Number(query.after)
        try {
          const { events, has_more } = await changePage(store, me!, params.id, { after, ...(query.limit !== undefined ? { limit: Number(query.limit) } : {}) })
          const through = events.at(-1)?.event_seq ?? after
          const shown = await shownTo(store, me!, params.id)
          const added = new Map<string, Message>()
          const replaced = new Map<string, Message>()
          const reacted = new Set<string>()
          let group = false
          for (const event of events) {
            switch (event.type) {
              case 'message':
                added.set(event.message.id, event.message)
                break
              case 'message_edited':
              case 'message_deleted':
                if (added.has(event.message.id)) added.set(event.message.id, event.message)
                else replaced.set(event.message.id, event.message)
                break
              case 'reaction':
                reacted.add(event.message_id)
                break
              case 'read':
                break // what is read now is shown below, whatever changed it
              default:
                group = true
            }
          }
          // Reactions say only what changed: their messages are read as they are now.
          for (const message of await messagesIn(store, params.id, [...reacted])) (added.has(message.id) ? added : replaced).set(message.id, message)
          const all = [...added.values(), ...replaced.values()]
          // Every message here was read after the last of these changes: that is their version.
          const viewer = await viewerFor(me!, shown, all, through)
          const reading = await conversations.readingOf(store, params.id, [me!.id])
          set.headers['x-has-more'] = String(has_more)
          return fragment(set, catchUp(viewer, after, through, { added: [...added.values()], replaced: [...replaced.values()], group }, { unread: reading.unread.get(me!.id) ?? 0, reads: reading.reads }))
        } catch (error) {
          if (!(error instanceof DomainError)) throw error
          if (error.status === 403) return fragment(set, noLongerMember(params.id).value, 403)
          return fragment(set, flash(errorText(error)).value, error.status)
        }
      })
      // The page has shown messages up to `seq` to its reader (public/app.js): their read position moves there.
      .post('/c/:id/read', async ({ me, params, body, set }) => {
        try {
          await conversations.markRead(deps, me!, params.id, { seq: Number(text(body, 'seq') || Number.NaN) })
          return fragment(set, '', 204)
        } catch (error) {
          if (!(error instanceof DomainError)) throw error
          return fragment(set, flash(errorText(error)).value, error.status)
        }
      })
      // A message on its own: Cancel of an edit puts it back.
      .get('/ui/messages/:mid', async ({ me, params, htmx, set, redirect }) => {
        try {
          const answer = await messageAnswer(me!, params.mid)
          return htmx ? fragment(set, answer.markup) : redirect(`/c/${answer.conversationId}#msg-${params.mid}`, 303)
        } catch (error) {
          if (!(error instanceof DomainError)) throw error
          return fragment(set, flash(error.message).value, error.status)
        }
      })
      .get('/ui/messages/:mid/edit', async ({ me, params, htmx, set, redirect }) => {
        try {
          const { shown, message } = await visibleMessage(store, me!, params.mid)
          if (!htmx) return redirect(`/c/${shown.record.id}?edit=${params.mid}#msg-${params.mid}`, 303)
          // Only its sender may edit (messages.edit decides when it is sent); others are told here already.
          const state: MessageState = message.sender_id === me!.id ? { editing: true } : { error: new Forbidden('Only its sender may edit a message').message }
          return fragment(set, (await messageAnswer(me!, params.mid, state)).markup, message.sender_id === me!.id ? 200 : 403)
        } catch (error) {
          if (!(error instanceof DomainError)) throw error
          return fragment(set, flash(error.message).value, error.status)
        }
      })
      .post('/ui/messages/:mid/edit', async ({ me, params, body, htmx, nonce, set, redirect }) => {
        const content = text(body, 'content')
        return messageAction(me!, params.mid, htmx, nonce, set, redirect, () => messages.edit(deps, me!, params.mid, { content }), { editing: true, draft: content })
      })
      .post('/ui/messages/:mid/delete', async ({ me, params, htmx, nonce, set, redirect }) =>
        messageAction(me!, params.mid, htmx, nonce, set, redirect, () => messages.remove(deps, me!, params.mid)),
      )
      .post('/ui/messages/:mid/reactions', async ({ me, params, body, htmx, nonce, set, redirect }) =>
        messageAction(me!, params.mid, htmx, nonce, set, redirect, () => messages.react(deps, me!, params.mid, reactionEmoji(body), reactionAdded(body))),
      )
      .post('/c/:id/members', async ({ me, params, body, htmx, nonce, set, redirect }) => {
        const usernames = text(body, 'usernames')
        return groupAction(me!, params.id, htmx, nonce, set, redirect, async () => {
          await conversations.addMembers(deps, me!, params.id, { member_ids: await usernamesToIds(deps, usernames) })
        }, { open: 'members', usernames })
      })
      .post('/c/:id/members/:uid/remove', async ({ me, params, htmx, nonce, set, redirect }) =>
        groupAction(me!, params.id, htmx, nonce, set, redirect, () => conversations.removeMember(deps, me!, params.id, params.uid), { open: 'members' }),
      )
      .post('/c/:id/rename', async ({ me, params, body, htmx, nonce, set, redirect }) => {
        const title = text(body, 'title')
        return groupAction(me!, params.id, htmx, nonce, set, redirect, () => conversations.rename(deps, me!, params.id, { title }), { open: 'rename', title })
      })
      // Leaving goes back to the list: a plain form post, with or without JavaScript.
      .post('/c/:id/leave', async ({ me, params, nonce, set, redirect }) => {
        try {
          await conversations.removeMember(deps, me!, params.id, me!.id)
          return redirect('/', 303)
        } catch (error) {
          if (!(error instanceof DomainError)) throw error
          return htmlResponse(set, errorPage(error.message, nonce), nonce, error.status)
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
          const memberIds = await usernamesToIds(deps, form.usernames!)
          const { conversation } = await conversations.create(deps, me!, { title: form.title, member_ids: memberIds, is_group: true })
          return redirect(`/c/${conversation.id}`, 303)
        } catch (error) {
          if (!(error instanceof DomainError)) throw error
          form.error = errorText(error, GROUP_LABELS)
          return htmlResponse(set, await renderChat(me!, nonce, undefined, form), nonce, error.status)
        }
      })
      // The first page (replacing the list, as after a reconnect), or with ?cursor= the next one, appended.
      // Every dot again, for a page back from a dropped connection (public/presence.js).
      .get('/ui/presence', async ({ me, set }) => fragment(set, presencePush(await users.listExcept(deps, me!))))
      .get('/ui/sidebar', async ({ me, query, set }) => {
        const listQuery = query.cursor === undefined ? {} : { cursor: query.cursor }
        return fragment(set, conversationPage(await conversations.pageFor(store, me!, listQuery), me!.id, query.cursor !== undefined))
      })
      // The search box: with htmx its results (or, with ?cursor=, the next page of them); without, the page with them in the sidebar.
      .get('/ui/search', async ({ me, query, htmx, nonce, set }) => {
        const cursor = typeof query.cursor === 'string' && query.cursor !== '' ? query.cursor : undefined
        const { view, status } = await searchView(deps, me!, typeof query.q === 'string' ? query.q : '', cursor)
        if (!htmx) return htmlResponse(set, await renderChat(me!, nonce, undefined, undefined, {}, view), nonce, status)
        if (cursor === undefined) return fragment(set, searchResults(view).value, status)
        return fragment(set, view.error ? searchMoreRefused(view.error).value : searchItems(view).value, status)
      })
  )

  type Set = { headers: Headers; status?: unknown }
  type Redirect = (url: string, status: 303) => Response

  /**
   * One of the viewer's actions on a message, through its service. Done: with htmx the message as
   * it is now, without it back to the conversation at the message. Refused: the message shown with
   * the refusal (and the form it came from), or the refusal alone when the message cannot be shown.
   */
  async function messageAction(me: User, id: string, htmx: boolean, nonce: string, set: Set, redirect: Redirect, act: () => Promise<unknown>, refusedState: MessageState = {}) {
    try {
      await act()
      const answer = await messageAnswer(me, id)
      return htmx ? fragment(set, answer.markup) : redirect(`/c/${answer.conversationId}#msg-${id}`, 303)
    } catch (error) {
      if (!(error instanceof DomainError)) throw error
      const state = { ...refusedState, error: errorText(error, MESSAGE_LABELS) }
      try {
        if (htmx) return fragment(set, (await messageAnswer(me, id, state)).markup, error.status)
        const { shown } = await visibleMessage(store, me, id)
        return htmlResponse(set, await renderChat(me, nonce, { id: shown.record.id, states: new Map([[id, state]]) }), nonce, error.status)
      } catch (unseen) {
        if (!(unseen instanceof DomainError)) throw unseen
        return htmx ? fragment(set, flash(error.message).value, error.status) : htmlResponse(set, errorPage(error.message, nonce), nonce, error.status)
      }
    }
  }

  /**
   * One of the viewer's changes to a group, through its service. Done: with htmx the group's header
   * and row as they are now, without it back to the conversation. Refused: the header with the
   * refusal and what was typed, or the refusal alone when the viewer cannot see the group.
   */
  async function groupAction(me: User, id: string, htmx: boolean, nonce: string, set: Set, redirect: Redirect, act: () => Promise<unknown>, refusedState: HeaderState) {
    try {
      await act()
      return htmx ? fragment(set, await groupAnswerFor(me, id)) : redirect(`/c/${id}`, 303)
    } catch (error) {
      if (!(error instanceof DomainError)) throw error
      const state = { ...refusedState, error: errorText(error, MEMBER_LABELS) }
      try {
        if (htmx) return fragment(set, await groupAnswerFor(me, id, state), error.status)
        return htmlResponse(set, await renderChat(me, nonce, { id, header: state }), nonce, error.status)
      } catch (unseen) {
        if (!(unseen instanceof DomainError)) throw unseen
        return htmx ? fragment(set, flash(error.message).value, error.status) : htmlResponse(set, errorPage(error.message, nonce), nonce, error.status)
      }
    }
  }
}
