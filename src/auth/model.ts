import { t } from 'elysia'
import { FullName, Username } from '../users/model'

const Password = t.String({ minLength: 8, maxLength: 256, error: 'must be 8–256 characters' })

export const Signup = t.Object({
  username: Username,
  password: Password,
  full_name: t.Optional(FullName),
})
export type Signup = typeof Signup.static

// Login does not repeat the signup rules: a wrong-shaped username is just a failed login.
export const Login = t.Object({
  username: t.String({ minLength: 1, maxLength: 256 }),
  password: t.String({ minLength: 1, maxLength: 256 }),
})
export type Login = typeof Login.static

export const Refresh = t.Object({ refresh_token: t.String({ minLength: 1, maxLength: 4096 }) })

export const TokenPair = t.Object({
  access_token: t.String(),
  refresh_token: t.String(),
  token_type: t.Literal('bearer'),
})
