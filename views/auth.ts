import { html } from './html'
import { page } from './layout'

export type SignInView = {
  tab: 'login' | 'signup'
  nonce: string
  error?: string
  username?: string
  fullName?: string
}

/** The signed-out page: Login and Sign Up tabs, each a plain form (works without JavaScript). */
export function signInPage(view: SignInView): string {
  const login = view.tab === 'login'
  const error = view.error ? html`<p class="form-error" role="alert">${view.error}</p>` : ''
  const body = html`<main class="sign-in">
  <h1 class="brand">Pneumatic</h1>
  <nav class="tabs" aria-label="Sign in or sign up">
    <a href="/" class="tab" ${login ? html`aria-current="page"` : ''}>Login</a>
    <a href="/?tab=signup" class="tab" ${login ? '' : html`aria-current="page"`}>Sign Up</a>
  </nav>
  ${
    login
      ? html`<form method="post" action="/ui/login" class="card">
    ${error}
    <label for="username">Username</label>
    <input id="username" name="username" autocomplete="username" required value="${view.username ?? ''}" autofocus>
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="current-password" required>
    <button type="submit">Login</button>
  </form>`
      : html`<form method="post" action="/ui/signup" class="card">
    ${error}
    <label for="username">Username</label>
    <input id="username" name="username" autocomplete="username" required minlength="3" maxlength="32" pattern="[A-Za-z0-9_.\\-]{3,32}" value="${view.username ?? ''}" autofocus>
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="new-password" required minlength="8" maxlength="256">
    <label for="full_name">Full Name <span class="optional">(optional)</span></label>
    <input id="full_name" name="full_name" autocomplete="name" value="${view.fullName ?? ''}">
    <button type="submit">Create Account</button>
  </form>`
  }
</main>`
  return page({ title: login ? 'Login · Pneumatic' : 'Sign Up · Pneumatic', nonce: view.nonce, body })
}
