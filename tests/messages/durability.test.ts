import { Database } from 'bun:sqlite'
import { describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { listen, onPostgres, testApp, type TestApp } from '../support/app'
import { account, conversation, send } from '../support/http'
import { TestSocket } from '../support/ws'

/** A second, independent connection to the same database: it sees only committed rows. */
function observer(t: TestApp) {
  if (onPostgres) {
    // t.sql has a connection of its own, apart from the app's pool.
    return { has: async (id: string) => (await t.sql('SELECT 1 FROM messages WHERE id = ?', id)).length > 0, [Symbol.dispose]() {} }
  }
  const db = new Database(join(t.dir, 'test.db'), { readonly: true })
  return {
    has: async (id: string) => db.query('SELECT 1 FROM messages WHERE id = ?').get(id) !== null,
    [Symbol.dispose]: () => db.close(),
  }
}

describe('acknowledged means committed', () => {
  test('when POST /messages answers, another connection already sees the row', async () => {
    await using t = await testApp()
    using other = observer(t)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    const reply = await send(t.app, alice, direct.id, 'on disk?')
    expect(reply.status).toBe(201)
    expect(await other.has(reply.body.id)).toBe(true)
  })

  test('when a WebSocket delivers a message, another connection already sees the row', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    using other = observer(t)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    using bobSocket = await TestSocket.open(`${ws}?token=${bob.token}`)
    // Check inside the bus delivery itself, the moment the frame is produced.
    // (On PostgreSQL the other connection's query is sent then, and answered a moment later.)
    const seenAtPublish: Promise<boolean>[] = []
    t.deps.bus.subscribe((event) => {
      if (event.type === 'conversation.changed' && event.change.type === 'message') seenAtPublish.push(other.has(event.change.message.id))
    })
    using aliceSocket = await TestSocket.open(`${ws}?token=${alice.token}`)
    aliceSocket.send({ type: 'message', message_id: 'durable-1', conversation_id: direct.id, content: 'committed first' })
    const delivered = await bobSocket.nextMessage()
    expect(await other.has(delivered.id)).toBe(true)
    expect(await Promise.all(seenAtPublish)).toEqual([true])
  })
})
