import { describe, expect, test } from 'bun:test'
import { t } from 'elysia'
import { Invalid } from '../../src/shared/errors'
import { validator } from '../../src/shared/validation'
import { listen, testApp } from '../support/app'
import { account, call, conversation } from '../support/http'
import { thrown } from '../support/services'
import { TestSocket } from '../support/ws'

/** What validator(schema) says of a value, as the message a client reads. */
const said = async (schema: Parameters<typeof validator>[0], value: unknown) => (await thrown(() => validator(schema)(value))).message

describe('validation messages a person can read', () => {
  test.each([
    ['a missing field', t.Object({ content: t.String() }), {}, 'content is required'],
    ['a missing field with a rule of its own', t.Object({ name: t.String({ error: 'must be a name' }) }), {}, 'name is required'],
    ['a number for a string', t.Object({ content: t.String() }), { content: 42 }, 'content must be a string'],
    ['an empty string', t.Object({ id: t.String({ minLength: 1 }) }), { id: '' }, 'id must not be empty'],
    ['a string too short', t.Object({ id: t.String({ minLength: 3 }) }), { id: 'ab' }, 'id must be at least 3 characters'],
    ['a string too long', t.Object({ id: t.String({ maxLength: 1 }) }), { id: 'ab' }, 'id must be at most 1 character'],
    ['a fraction for a whole number', t.Object({ n: t.Integer() }), { n: 1.5 }, 'n must be a whole number'],
    ['a number too small', t.Object({ n: t.Integer({ minimum: 1 }) }), { n: 0 }, 'n must be at least 1'],
    ['a number too large', t.Object({ n: t.Number({ maximum: 9 }) }), { n: 10 }, 'n must be at most 9'],
    ['a string for a boolean', t.Object({ b: t.Boolean() }), { b: 'yes' }, 'b must be true or false'],
    ['a string for a list', t.Object({ ids: t.Array(t.String()) }), { ids: 'x' }, 'ids must be a list'],
    ['a list too long', t.Object({ ids: t.Array(t.String(), { maxItems: 1 }) }), { ids: ['a', 'b'] }, 'ids must have at most 1 item'],
    ['a list item of the wrong type', t.Object({ ids: t.Array(t.String()) }), { ids: [7] }, 'ids.0 must be a string'],
    ['a list for an object', t.Object({ a: t.String() }), [], 'body must be a JSON object'],
    ['the wrong constant', t.Object({ type: t.Literal('ping') }), { type: 'pong' }, 'type must be "ping"'],
    ['a schema with its own words', t.Object({ u: t.String({ pattern: '^a$', error: 'must be the letter a' }) }), { u: 'b' }, 'u must be the letter a'],
  ])('%s', async (_, schema, value, expected) => {
    expect(await said(schema, value)).toBe(expected)
  })

  test('several faulty fields are one sentence, and each is a detail of its own', async () => {
    const error = await thrown(() => validator(t.Object({ a: t.String(), b: t.Integer() }))({ b: 'x' }))
    expect(error).toBeInstanceOf(Invalid)
    expect(error.message).toBe('a is required; b must be a whole number')
    expect(error.details).toEqual([
      { field: 'a', message: 'is required' },
      { field: 'b', message: 'must be a whole number' },
    ])
  })

  test('REST routes (validated by Elysia) and services (validated by the same schemas) say the same words', async () => {
    await using app = await testApp()
    const alice = await account(app.app)
    const viaRoute = await call(app.app, 'POST', '/messages', { token: alice.token, body: { message_id: 'm1', conversation_id: 'c1' } })
    expect(viaRoute.status).toBe(422)
    expect(viaRoute.body.error).toEqual({ code: 'validation_failed', message: 'content is required', details: [{ field: 'content', message: 'is required' }] })

    const badQuery = await call(app.app, 'GET', '/conversations/c1/messages?limit=abc', { token: alice.token })
    expect(badQuery.body.error).toMatchObject({ code: 'validation_failed', message: 'limit must be a whole number from 1 to 200' })
  })

  test.each([
    ['content', { message_id: 'm1', conversation_id: 'c1', content: { toString: '' } }],
    ['message_id', { message_id: { toString: 1, valueOf: 1 }, conversation_id: 'c1', content: 'x' }],
    ['sender_id', { message_id: 'm1', conversation_id: 'c1', content: 'x', sender_id: { toString: null } }],
  ])('an object that cannot be turned into text (%s with a toString that is no function) is a 422, not a 500', async (field, body) => {
    // Elysia's own validation error interpolated the value it found, which throws for these.
    await using app = await testApp()
    const alice = await account(app.app)
    const reply = await call(app.app, 'POST', '/messages', { token: alice.token, body })
    expect(reply.status).toBe(422)
    expect(reply.body.error).toMatchObject({ code: 'validation_failed', details: [{ field, message: expect.any(String) }] })
    const signup = await call(app.app, 'POST', '/auth/signup', { body: { username: { toString: '' }, password: 'password123' } })
    expect(signup.status).toBe(422)
  })

  test('a WebSocket message frame without content gets an error frame saying "content is required"', async () => {
    await using app = await testApp()
    const { ws } = listen(app.app)
    const alice = await account(app.app)
    const bob = await account(app.app)
    const direct = await conversation(app.app, alice, [bob])
    using socket = await TestSocket.open(`${ws}?token=${alice.token}`)
    socket.send({ type: 'message', message_id: 'm1', conversation_id: direct.id })
    expect(await socket.nextOfType('error')).toEqual({
      type: 'error',
      error: { code: 'validation_failed', message: 'content is required', details: [{ field: 'content', message: 'is required' }] },
      message_id: 'm1',
      conversation_id: direct.id,
    })
  })
})
