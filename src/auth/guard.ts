import { Elysia } from 'elysia'
import type { AppDeps } from '../deps'
import { Unauthorized } from '../shared/errors'
import { explicitToken } from './credentials'
import { actingUser } from '../observability/requests'
import { authenticate } from './service'

/** `{ auth: true }` on a route resolves `user` (and its `sessionId`) from the bearer token, or answers 401. */
export const authGuard = (deps: Pick<AppDeps, 'store' | 'tokens'>) =>
  new Elysia().macro({
    auth: {
      async resolve({ request }) {
        const token = explicitToken(request)
        if (!token) throw new Unauthorized('Missing bearer token', 'missing_token')
        const { user, sessionId } = await authenticate(deps.store, deps.tokens, token)
        actingUser(request, user.id)
        return { user, sessionId }
      },
    },
  })
