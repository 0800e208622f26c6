import { Database } from 'bun:sqlite'
import { describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { listen, testApp, type TestApp } from '../support/app'
import { account, conversation, send } from '../support/http'
import { TestSocket } from '../support/ws'

/** A second, independent connection to the same file: it sees only committed rows. */
function observer(t: TestApp) {
  const db = new Database(join(t.dir, 'test.db'), { readonly: true })
  return {
    has: (id: string) => db.query('SELECT 1 FROM messages WHERE id = ?').get(id) !== null,
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
    expect(other.has(reply.body.id)).toBe(true)
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
    const seenAtPublish: boolean[] = []
    t.deps.bus.subscribe((event) => {
      if (event.type === 'message.created') seenAtPublish.push(other.has(event.message.id))
    })
    using aliceSocket = await TestSocket.open(`${ws}?token=${alice.token}`)
    aliceSocket.send({ type: 'message', message_id: 'durable-1', conversation_id: direct.id, content: 'committed first' })
    const delivered = await bobSocket.nextMessage()
    expect(other.has(delivered.id)).toBe(true)
    expect(seenAtPublish).toEqual([true])
  })
})
