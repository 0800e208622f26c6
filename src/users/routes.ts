import { Elysia } from 'elysia'
import { authGuard } from '../auth/guard'
import type { AppDeps } from '../deps'
import { errors } from '../shared/http'
import { UserList } from './model'
import * as users from './service'

export const userRoutes = (deps: AppDeps) =>
  new Elysia({ detail: { tags: ['users'] } }).use(authGuard(deps)).get('/users', ({ user }) => ({ users: users.listExcept(deps.db, user) }), {
    auth: true,
    response: { 200: UserList, ...errors(401) },
    detail: { summary: 'Everyone except the caller' },
  })
