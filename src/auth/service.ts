import type { Db } from '../db/client'
import { Unauthorized } from '../shared/errors'
import { checkMaxCharacters, validator } from '../shared/validation'
import { MAX_FULL_NAME_CHARACTERS, type User } from '../users/model'
import * as users from '../users/service'
import { Login, Signup } from './model'
import { dummyPasswordHash, hashPassword, verifyPassword } from './passwords'
import type { TokenPair, Tokens } from './tokens'

const checkSignup = validator(Signup)
const checkLogin = validator(Login)

export async function signup(db: Db, input: unknown): Promise<User> {
  const { username, password, full_name } = checkSignup(input)
  const fullName = full_name?.trim() || null
  if (fullName) checkMaxCharacters('full_name', fullName, MAX_FULL_NAME_CHARACTERS)
  return users.create(db, { username, fullName, passwordHash: await hashPassword(password) })
}

const invalidCredentials = () => new Unauthorized('Invalid username or password', 'invalid_credentials')

/** Unknown user and wrong password fail alike, in status, body and time spent hashing. */
export async function login(db: Db, tokens: Tokens, input: unknown): Promise<TokenPair> {
  const { username, password } = checkLogin(input)
  const row = users.credentialsByUsername(db, username)
  const ok = await verifyPassword(password, row?.passwordHash ?? (await dummyPasswordHash()))
  if (!row || !ok) throw invalidCredentials()
  return tokens.issuePair(row.id)
}

export async function refresh(db: Db, tokens: Tokens, refreshToken: string): Promise<TokenPair> {
  const userId = await tokens.verify(refreshToken, 'refresh')
  if (!users.byId(db, userId)) throw new Unauthorized('Account no longer exists', 'invalid_token')
  return tokens.issuePair(userId)
}

/** The user an access token belongs to. */
export async function authenticate(db: Db, tokens: Tokens, accessToken: string): Promise<User> {
  const userId = await tokens.verify(accessToken, 'access')
  const user = users.byId(db, userId)
  if (!user) throw new Unauthorized('Account no longer exists', 'invalid_token')
  return user
}
