import { t } from 'elysia'

export const Username = t.String({
  pattern: '^[A-Za-z0-9_.-]{3,32}$',
  error: 'must be 3–32 characters of letters, digits, "_", "." or "-"',
  examples: ['alice'],
})

export const MAX_FULL_NAME_CHARACTERS = 100

export const FullName = t.Nullable(
  t.String({
    description: `At most ${MAX_FULL_NAME_CHARACTERS} characters, without control or bidi control characters; one with nothing visible is none`,
    examples: ['Alice Smith'],
  }),
  {
    error: 'must be a string or null',
  },
)

export const User = t.Object({
  id: t.String(),
  username: t.String(),
  full_name: t.Nullable(t.String()),
})
export type User = typeof User.static

/** Someone as GET /users lists them: who they are, whether they are online, and when they were last seen. */
export const ListedUser = t.Object({
  ...User.properties,
  online: t.Boolean({ description: 'Whether they have a WebSocket open (on any node), or closed their last one less than PRESENCE_GRACE_SECONDS ago' }),
  last_seen_at: t.Nullable(t.String({ format: 'date-time', description: 'When they last went offline (their last WebSocket closed); null if never' })),
})
export type ListedUser = typeof ListedUser.static

export const UserList = t.Object({ users: t.Array(ListedUser) })
