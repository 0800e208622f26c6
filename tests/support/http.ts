import type { App } from '../../src/app'

export type Reply<T = any> = { status: number; body: T; headers: Headers }

type Options = { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> }

/** One request through app.handle (no socket), JSON in and out. */
export async function call<T = any>(app: App, method: string, path: string, opts: Options = {}): Promise<Reply<T>> {
  const headers: Record<string, string> = { ...opts.headers }
  if (opts.token) headers.authorization = `Bearer ${opts.token}`
  let body: string | undefined
  if (opts.raw !== undefined) body = opts.raw
  else if (opts.body !== undefined) body = JSON.stringify(opts.body)
  if (body !== undefined) headers['content-type'] ??= 'application/json'
  const response = await app.handle(new Request(`http://localhost${path}`, { method, headers, body }))
  const text = await response.text()
  let parsed: unknown = text
  try {
    parsed = JSON.parse(text)
  } catch {}
  return { status: response.status, body: parsed as T, headers: response.headers }
}

export type Account = { id: string; username: string; token: string; refresh: string }

let counter = 0
/** A unique, valid username for this test run. */
export const uniqueName = (prefix = 'user') => `${prefix}_${++counter}_${Math.random().toString(36).slice(2, 7)}`

/** Signs up and logs in through the API, as a client would. */
export async function account(app: App, username = uniqueName(), fullName?: string): Promise<Account> {
  const password = 'correct horse battery'
  const signup = await call(app, 'POST', '/auth/signup', { body: { username, password, ...(fullName ? { full_name: fullName } : {}) } })
  if (signup.status !== 201) throw new Error(`signup failed: ${signup.status} ${JSON.stringify(signup.body)}`)
  const login = await call(app, 'POST', '/auth/login', { body: { username, password } })
  if (login.status !== 200) throw new Error(`login failed: ${login.status} ${JSON.stringify(login.body)}`)
  return { id: signup.body.id, username, token: login.body.access_token, refresh: login.body.refresh_token }
}

export async function conversation(app: App, owner: Account, members: Account[], title?: string) {
  const reply = await call(app, 'POST', '/conversations', { token: owner.token, body: { member_ids: members.map((m) => m.id), ...(title ? { title, is_group: true } : {}) } })
  if (reply.status !== 201 && reply.status !== 200) throw new Error(`create conversation failed: ${reply.status} ${JSON.stringify(reply.body)}`)
  return reply.body as { id: string; members: string[]; is_group: boolean }
}

export async function send(app: App, sender: Account, conversationId: string, content: string, messageId: string = crypto.randomUUID()) {
  return call(app, 'POST', '/messages', { token: sender.token, body: { message_id: messageId, conversation_id: conversationId, content } })
}
