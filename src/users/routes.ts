import { Elysia } from 'elysia'
import { authGuard } from '../auth/guard'
import type { AppDeps } from '../deps'
import { errors, served } from '../shared/http'
import { UserList } from './model'
import * as users from './service'

export const userRoutes = (deps: AppDeps) =>
  new Elysia({ detail: { tags: ['users'] } }).use(authGuard(deps)).get('/users', async ({ user }) => ({ users: await users.listExcept(deps.store, user) }), {
    auth: true,
    response: { 200: served(UserList), ...errors(401) },
    detail: { summary: 'Everyone except the caller' },
  })
