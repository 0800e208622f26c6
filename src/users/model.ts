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

export const UserList = t.Object({ users: t.Array(User) })
