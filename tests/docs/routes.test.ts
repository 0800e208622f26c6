import { describe, expect, test } from 'bun:test'
import { testApp } from '../support/app'
import { call } from '../support/http'

describe('API docs', () => {
  test('/docs is a page that loads only local assets', async () => {
    await using t = await testApp()
    const page = await t.app.handle(new Request('http://localhost/docs'))
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toContain('text/html')
    const csp = page.headers.get('content-security-policy')!
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).not.toContain('unsafe-')
    const html = await page.text()
    // data: URIs (the empty favicon) load nothing; everything else must be served from here.
    const sources = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!).filter((s) => !s.startsWith('data:'))
    expect(sources.length).toBeGreaterThanOrEqual(3)
    for (const source of sources) {
      expect(source).toStartWith('/docs/assets/')
      const asset = await t.app.handle(new Request(`http://localhost${source}`))
      expect(asset.status).toBe(200)
      expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(100)
    }
  })

  test('an unknown asset is 404', async () => {
    await using t = await testApp()
    expect((await call(t.app, 'GET', '/docs/assets/..%2Fpackage.json')).status).toBe(404)
  })

  test('/docs/json describes every route with its schemas, tags and bearer auth', async () => {
    await using t = await testApp()
    const { status, body: spec } = await call(t.app, 'GET', '/docs/json')
    expect(status).toBe(200)
    expect(spec.openapi).toStartWith('3.')
    expect(spec.components.securitySchemes.bearerAuth).toEqual({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
    expect(spec.security).toEqual([{ bearerAuth: [] }])
    const operations = {
      'post /auth/signup': 'auth',
      'post /auth/login': 'auth',
      'post /auth/refresh': 'auth',
      'get /auth/me': 'auth',
      'get /users': 'users',
      'get /conversations': 'conversations',
      'post /conversations': 'conversations',
      'get /conversations/{id}/messages': 'conversations',
      'post /messages': 'messages',
      'get /health': 'observability',
      'get /ready': 'observability',
    }
    for (const [operation, tag] of Object.entries(operations)) {
      const [method, path] = operation.split(' ') as [string, string]
      const op = spec.paths[path]?.[method]
      expect(op, operation).toBeDefined()
      expect(op.tags).toContain(tag)
      expect(Object.keys(op.responses).length).toBeGreaterThan(0)
    }
    expect(spec.paths['/auth/login'].post.security).toEqual([])
    expect(spec.paths['/auth/me'].get.security).toBeUndefined()
    expect(spec.paths['/messages'].post.requestBody.content['application/json'].schema.required).toEqual(['message_id', 'conversation_id', 'content'])
    expect(Object.keys(spec.paths['/messages'].post.responses)).toEqual(expect.arrayContaining(['201', '403', '409', '422']))
    // A replay answers as the first request did: 201, never 200, with Idempotent-Replayed saying so.
    expect(spec.paths['/messages'].post.responses['200']).toBeUndefined()
    expect(spec.paths['/messages'].post.description).toContain('Idempotent-Replayed: true')
    const create = spec.paths['/conversations'].post
    expect(create.responses['200']).toBeUndefined()
    expect(create.description).toContain('Idempotent-Replayed: true')
    expect(create.requestBody.content['application/json'].schema.properties.is_group).toMatchObject({ type: 'boolean', description: expect.stringContaining('group') })
    const history = spec.paths['/conversations/{id}/messages'].get.parameters.map((p: { name: string }) => p.name)
    expect(history).toEqual(expect.arrayContaining(['id', 'limit', 'before', 'after']))
    const list = spec.paths['/conversations'].get
    expect(list.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['limit', 'cursor']))
    expect(list.description).toContain('next_cursor')
    expect(Object.keys(list.responses)).toEqual(expect.arrayContaining(['200', '401', '422']))
    const page = list.responses['200'].content['application/json'].schema
    expect(Object.keys(page.properties).sort()).toEqual(['conversations', 'next_cursor'])
  })
})
