import { Elysia } from 'elysia'
import { clientIp } from '../shared/http'
import type { AppDeps } from '../deps'
import { PUBLIC, errors, served } from '../shared/http'
import { User } from '../users/model'
import { authGuard } from './guard'
import { Login, Refresh, Signup, TokenPair } from './model'
import * as auth from './service'

export const authRoutes = (deps: AppDeps) => {
  // Sessions ended on any node (the bus carries them between nodes) are forgotten here too.
  const unsubscribe = deps.bus.subscribe((event) => {
    if (event.type === 'session.ended') auth.forgetEndedSessions(deps.store, event)
  })
  return new Elysia({ prefix: '/auth', detail: { tags: ['auth'] } })
    .onStop(() => unsubscribe())
    .use(authGuard(deps))
    .post('/signup', async ({ body, request, server, status }) => status(201, await auth.signup(deps, body, clientIp(request, server, deps.config.trustProxyHops))), {
      body: Signup,
      parse: 'json',
      response: { 201: served(User), ...errors(400, 409, 422, 429) },
      detail: {
        summary: 'Create an account',
        description: 'Usernames are 3–32 of letters, digits, "_", "." and "-", unique in any case; passwords are 8–256 characters. Signups are counted per client address (429 with Retry-After past the limit).',
        ...PUBLIC,
      },
    })
    .post('/login', ({ body, request, server }) => auth.login(deps, body, clientIp(request, server, deps.config.trustProxyHops)), {
      body: Login,
      parse: 'json',
      response: { 200: served(TokenPair), ...errors(400, 401, 422, 429) },
      detail: {
        summary: 'Exchange username and password for tokens',
        description:
          'Failed logins are counted per client address and per username; once either has failed too often in a window, every login for it is refused with 429 and Retry-After until the window ends. Successful logins are not counted.',
        ...PUBLIC,
      },
    })
    .post('/refresh', ({ body }) => auth.refresh(deps, body.refresh_token), {
      body: Refresh,
      parse: 'json',
      response: { 200: served(TokenPair), ...errors(400, 401, 422) },
      detail: {
        summary: 'Exchange a refresh token for a new token pair',
        description:
          'The refresh token is used up. Presented again within REFRESH_REUSE_GRACE_SECONDS (default 30) of its exchange, it gets the same new pair again; presenting any older one, or it after that, ends its whole session (401 token_reused), the newest tokens included.',
        ...PUBLIC,
      },
    })
    .post(
      '/logout',
      async ({ user, sessionId, status }) => {
        await auth.logout(deps, { user, sessionId })
        return status(204, undefined)
      },
      { auth: true, detail: { summary: "End this session: its tokens stop working and its sockets close (1008)" } },
    )
    .post(
      '/logout-all',
      async ({ user, status }) => {
        await auth.logoutAll(deps, user)
        return status(204, undefined)
      },
      { auth: true, detail: { summary: 'End every session of this account, on every device' } },
    )
    .get('/me', ({ user }) => user, {
      auth: true,
      response: { 200: served(User), ...errors(401) },
      detail: { summary: 'The signed-in user' },
    })
}
