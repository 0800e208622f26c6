import { openapi } from '@elysiajs/openapi'
import { Elysia } from 'elysia'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pkg from '../../package.json'

const swaggerDist = dirname(fileURLToPath(import.meta.resolve('swagger-ui-dist/package.json')))
const publicDocs = join(import.meta.dir, '..', '..', 'public', 'docs')

// Everything the page loads is served from here: the docs work with no internet.
const ASSETS: Record<string, string> = {
  'swagger-ui.css': join(swaggerDist, 'swagger-ui.css'),
  'swagger-ui-bundle.js': join(swaggerDist, 'swagger-ui-bundle.js'),
  'init.js': join(publicDocs, 'init.js'),
}

// Swagger UI runs from our own files only; it needs no inline script and no eval.
const DOCS_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "object-src 'none'",
  "frame-ancestors 'none'",
].join('; ')

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Pneumatic API</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/init.js"></script>
</body>
</html>`

export const docsRoutes = () =>
  new Elysia()
    .use(
      openapi({
        path: '/docs',
        specPath: '/docs/json',
        provider: null,
        documentation: {
          info: {
            title: 'Pneumatic',
            version: pkg.version,
            description:
              'Self-hosted real-time chat. Authenticate with `Authorization: Bearer <access_token>` from /auth/login. Live delivery is on the WebSocket at `/ws?token=<access_token>` (see the README for its frames).',
          },
          tags: [
            { name: 'auth', description: 'Accounts and tokens' },
            { name: 'users', description: 'People on this server' },
            { name: 'conversations', description: '1-on-1s, groups and their history' },
            { name: 'messages', description: 'Sending' },
            { name: 'observability', description: 'Health and readiness' },
          ],
          components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
          security: [{ bearerAuth: [] }],
        },
      }),
    )
    .get('/docs', () => new Response(PAGE, { headers: { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': DOCS_CSP } }), { detail: { hide: true } })
    .get(
      '/docs/assets/:file',
      ({ params, status }) => {
        const path = ASSETS[params.file]
        return path ? Bun.file(path) : status(404, { error: { code: 'not_found', message: 'No such asset' } })
      },
      { detail: { hide: true } },
    )
