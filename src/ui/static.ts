import { Elysia } from 'elysia'
import { join } from 'node:path'

const PUBLIC = join(import.meta.dir, '..', '..', 'public')

// An allow-list: nothing outside it is served, whatever the path says.
const FILES: Record<string, string> = {
  'app.css': 'app.css',
  'app.js': 'app.js',
  'presence.js': 'presence.js',
  'vendor/htmx-4.0.1/htmx.min.js': 'vendor/htmx-4.0.1/htmx.min.js',
  'vendor/htmx-4.0.1/hx-ws.min.js': 'vendor/htmx-4.0.1/hx-ws.min.js',
}

export const staticRoutes = () =>
  new Elysia().get(
    '/static/*',
    ({ params, set, status }) => {
      const file = FILES[params['*']]
      if (!file) return status(404, { error: { code: 'not_found', message: 'No such file' } })
      set.headers['cache-control'] = file.startsWith('vendor/') ? 'public, max-age=31536000, immutable' : 'no-cache'
      return Bun.file(join(PUBLIC, file))
    },
    { detail: { hide: true } },
  )
