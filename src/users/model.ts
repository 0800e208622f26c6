import { t } from 'elysia'

export const Username = t.String({
  pattern: '^[A-Za-z0-9_.-]{3,32}$',
  error: 'must be 3–32 characters of letters, digits, "_", "." or "-"',
  examples: ['alice'],
})

export const FullName = t.String({ maxLength: 100, error: 'must be at most 100 characters', examples: ['Alice Smith'] })

export const User = t.Object({
  id: t.String(),
  username: t.String(),
  full_name: t.Nullable(t.String()),
})
export type User = typeof User.static

export const UserList = t.Object({ users: t.Array(User) })
