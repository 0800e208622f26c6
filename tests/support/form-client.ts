import type { App } from '../../src/app'
import { call, uniqueName } from './http'

export type PageReply = { status: number; body: string; headers: Headers; location: string | null }

/**
 * A browser without the browser: keeps cookies and sends forms the way a page of this server
 * does (Sec-Fetch-Site: same-origin), through app.handle.
 */
export class FormClient {
  readonly cookies = new Map<string, string>()
  constructor(
    private readonly app: App,
    private readonly origin = 'http://localhost',
  ) {}

  /** Headers given as '' are left out (e.g. `{ 'sec-fetch-site': '' }` for a client that sends none). */
  async request(method: string, path: string, opts: { form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<PageReply> {
    const headers: Record<string, string> = Object.fromEntries(Object.entries({ 'sec-fetch-site': 'same-origin', ...opts.headers }).filter(([, v]) => v !== ''))
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
    let body: string | undefined
    if (opts.form) {
      body = new URLSearchParams(opts.form).toString()
      headers['content-type'] = 'application/x-www-form-urlencoded'
    }
    const response = await this.app.handle(new Request(this.origin + path, { method, headers, body, redirect: 'manual' }))
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';')
      const [name, ...rest] = pair!.split('=')
      const value = rest.join('=')
      if (/max-age=0/i.test(line) || value === '') this.cookies.delete(name!.trim())
      else this.cookies.set(name!.trim(), value)
    }
    return { status: response.status, body: await response.text(), headers: response.headers, location: response.headers.get('location') }
  }

  get = (path: string, headers?: Record<string, string>) => this.request('GET', path, { headers })
  post = (path: string, form: Record<string, string>, headers?: Record<string, string>) => this.request('POST', path, { form, headers })

  /** Signs up through the UI form; the session cookies are then set. */
  async signUp(username: string, fullName = '', password = 'correct horse battery'): Promise<PageReply> {
    return this.post('/ui/signup', { username, password, full_name: fullName })
  }
}

/**
 * A new user signed up through the form and so signed in, as a browser is: their session (cookies),
 * username, id, and an API token of a login of theirs.
 */
export async function signedInBrowser(t: { app: App }, fullName = '') {
  const client = new FormClient(t.app)
  const username = uniqueName()
  const reply = await client.signUp(username, fullName)
  if (reply.status !== 303) throw new Error(`sign-up failed: ${reply.status} ${reply.body}`)
  const login = await call(t.app, 'POST', '/auth/login', { body: { username, password: 'correct horse battery' } })
  const token = login.body.access_token as string
  const id = (await call(t.app, 'GET', '/auth/me', { token })).body.id as string
  return { client, username, id, token }
}
