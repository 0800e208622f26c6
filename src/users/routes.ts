import { Elysia } from 'elysia'
import { authGuard } from '../auth/guard'
import type { AppDeps } from '../deps'
import { errors, served } from '../shared/http'
import { UserList } from './model'
import * as users from './service'

export const userRoutes = (deps: AppDeps) =>
  new Elysia({ detail: { tags: ['users'] } }).use(authGuard(deps)).get('/users', async ({ user }) => ({ users: await users.listExcept(deps, user) }), {
    auth: true,
    response: { 200: served(UserList), ...errors(401) },
    detail: {
      summary: 'Everyone except the caller',
      description:
        'By username, each with `online` (a WebSocket open on any node, or closed less than PRESENCE_GRACE_SECONDS ago) and `last_seen_at` (when they last went offline, or null). Changes reach the sockets of those who share a conversation with them as `{"type":"presence","user_id","online"}` frames.',
    },
  })
