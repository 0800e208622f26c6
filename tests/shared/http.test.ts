import { describe, expect, test } from 'bun:test'
import { Elysia, t } from 'elysia'
import { served } from '../../src/shared/http'

describe('served(schema)', () => {
  test('a response drops every property its schema does not name, so nothing internal leaks', async () => {
    const Public = t.Object({ id: t.String(), name: t.String() })
    const app = new Elysia().get('/', () => ({ id: 'u1', name: 'Ada', passwordHash: 'secret', nested: { x: 1 } }) as { id: string; name: string }, {
      response: served(Public),
    })
    const reply = await app.handle(new Request('http://localhost/'))
    expect(await reply.json()).toEqual({ id: 'u1', name: 'Ada' })
  })

  test('keeps the schema for the API docs', () => {
    const Public = t.Object({ id: t.String() }, { description: 'A thing' })
    expect(served(Public)).toMatchObject({ type: 'object', description: 'A thing', properties: { id: { type: 'string' } } })
  })
})
