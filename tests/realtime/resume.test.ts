import { describe, expect, test } from 'bun:test'
import { listen, testApp, type TestApp } from '../support/app'
import { account, call, conversation, send, type Account } from '../support/http'
import { mulberry32 } from '../support/random'
import { type Frame, TestSocket } from '../support/ws'

/**
 * The resume protocol (issue 17): a socket that reconnects with ?resume=1 and sends where it
 * stood gets every change it missed, per conversation and in order, then `resumed`, then live
 * changes: none lost, none twice, whatever happens meanwhile.
 */

const edit = (t: TestApp, who: Account, id: string, content: string) => call(t.app, 'PATCH', `/messages/${id}`, { token: who.token, body: { content } })
const remove = (t: TestApp, who: Account, id: string) => call(t.app, 'DELETE', `/messages/${id}`, { token: who.token })
const react = (t: TestApp, who: Account, id: string, emoji: string, added = true) =>
  call(t.app, added ? 'PUT' : 'DELETE', `/messages/${id}/reactions/${encodeURIComponent(emoji)}`, { token: who.token })

const CHANGE_TYPES = new Set(['message', 'message_edited', 'message_deleted', 'reaction', 'member_added', 'member_removed', 'conversation_updated', 'read'])
const isChange = (f: Frame) => CHANGE_TYPES.has(f.type) && typeof f.event_seq === 'number'

/** Frames up to and including `resumed`. */
async function untilResumed(socket: TestSocket): Promise<Frame[]> {
  const start = socket.received.length
  await socket.nextOfType('resumed')
  return socket.received.slice(start)
}

describe('resume', () => {
  test('a socket back from a disconnect gets what it missed in each conversation, in order, and the conversations it joined meanwhile, then resumed', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const carol = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    const seen = (await send(t.app, alice, direct.id, 'before the drop')).body
    {
      using bobSocket = await TestSocket.open(`${ws}?token=${bob.token}`)
      await send(t.app, alice, direct.id, 'seen live')
      expect((await bobSocket.nextOfType('message')).event_seq).toBe(2)
    }
    // Bob is offline: a message, an edit, a reaction, a deletion, and a new group with him in it.
    const missed = (await send(t.app, alice, direct.id, 'missed')).body
    await edit(t, alice, seen.id, 'before the drop, edited')
    await react(t, alice, missed.id, '👀')
    await remove(t, alice, missed.id)
    const group = await conversation(t.app, carol, [alice, bob], 'While you were away')
    await send(t.app, carol, group.id, 'welcome back')

    using bobSocket = await TestSocket.open(`${ws}?token=${bob.token}&resume=1`)
    bobSocket.send({ type: 'resume', positions: { [direct.id]: 2 } })
    const replay = await untilResumed(bobSocket)
    expect(replay.map((f) => [f.type, f.conversation_id ?? f.conversation?.id, f.event_seq])).toEqual([
      ['message', direct.id, 3],
      ['message_edited', direct.id, 4],
      ['reaction', direct.id, 5],
      ['message_deleted', direct.id, 6],
      ['conversation', group.id, undefined],
      ['message', group.id, 1],
      ['resumed', undefined, undefined],
    ])
    // Each replayed message as it is now: the missed one deleted, its reaction gone with it.
    expect(replay[0]!.message).toMatchObject({ id: missed.id, content: '', reactions: [] })
    expect(replay[1]!.message).toMatchObject({ id: seen.id, content: 'before the drop, edited' })

    // Then live, once each.
    await send(t.app, alice, direct.id, 'live again')
    await send(t.app, carol, group.id, 'and here')
    expect((await bobSocket.next((f) => f.type === 'message' && f.conversation_id === direct.id && f.event_seq === 7, 'the live message')).message.content).toBe('live again')
    expect((await bobSocket.next((f) => f.type === 'message' && f.conversation_id === group.id && f.event_seq === 2, 'the live group message')).message.content).toBe('and here')
    await bobSocket.drain()
    const changes = bobSocket.received.filter(isChange).map((f) => `${f.conversation_id}:${f.event_seq}`)
    expect(new Set(changes).size).toBe(changes.length)
  })

  test('changes made during the replay are neither lost nor doubled: every event_seq once, in order', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    for (let i = 1; i <= 600; i++) await send(t.app, alice, direct.id, `backlog ${i}`)
    using bobSocket = await TestSocket.open(`${ws}?token=${bob.token}&resume=1`)
    // Alice keeps sending while Bob's replay runs, on another socket.
    using aliceSocket = await TestSocket.open(`${ws}?token=${alice.token}`)
    const LIVE = 200
    bobSocket.send({ type: 'resume', positions: { [direct.id]: 0 } })
    for (let i = 1; i <= LIVE; i++) aliceSocket.send({ type: 'message', message_id: `live-${i}`, conversation_id: direct.id, content: `live ${i}` })
    await bobSocket.next((f) => f.type === 'message' && f.event_seq === 600 + LIVE, 'the last message')
    await bobSocket.nextOfType('resumed')
    await bobSocket.drain()
    const order = bobSocket.received.filter(isChange).map((f) => f.event_seq)
    expect(order).toEqual(Array.from({ length: 600 + LIVE }, (_, i) => i + 1))
  }, 60_000)

  test('changes past retention answer resync_required for that conversation (and 410 over REST); the others replay', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const direct = await conversation(t.app, alice, [bob])
    const other = await conversation(t.app, bob, [await account(t.app)])
    const first = (await send(t.app, alice, direct.id, 'one')).body
    await edit(t, alice, first.id, 'one, edited')
    await send(t.app, alice, direct.id, 'two')
    await send(t.app, bob, other.id, 'elsewhere')
    // As the retention job leaves it: the edit's row gone, and where pruning stopped.
    await t.sql('DELETE FROM conversation_events WHERE conversation_id = ?', direct.id)
    await t.sql('UPDATE conversations SET pruned_event_seq = 2, pruned_after_seq = 1 WHERE id = ?', direct.id)

    expect(await call(t.app, 'GET', `/conversations/${direct.id}/events?after=1`, { token: bob.token })).toMatchObject({ status: 410, body: { error: { code: 'resync_required' } } })
    expect((await call(t.app, 'GET', `/conversations/${direct.id}/events?after=2`, { token: bob.token })).body.events.map((e: Frame) => e.event_seq)).toEqual([3])

    using bobSocket = await TestSocket.open(`${ws}?token=${bob.token}&resume=1`)
    bobSocket.send({ type: 'resume', positions: { [direct.id]: 1, [other.id]: 0 } })
    const replay = (await untilResumed(bobSocket)).map((f) => [f.type, f.conversation_id, f.event_seq])
    expect(replay).toContainEqual(['resync_required', direct.id, undefined])
    expect(replay).toContainEqual(['message', other.id, 1])
    expect(replay.filter(([, id]) => id === direct.id)).toEqual([['resync_required', direct.id, undefined]])
    // Followed live from there.
    await send(t.app, alice, direct.id, 'three')
    expect((await bobSocket.next((f) => f.type === 'message' && f.conversation_id === direct.id, 'live')).event_seq).toBe(4)
  })

  test('a bad resume frame is an error frame naming the field, and the socket stays usable', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    using socket = await TestSocket.open(`${ws}?token=${alice.token}&resume=1`)
    const tooMany = Object.fromEntries(Array.from({ length: 5_001 }, (_, i) => [i.toString(36), 0]))
    for (const [positions, field] of [
      [undefined, 'positions'],
      ['all', 'positions'],
      [[1, 2], 'positions'],
      [{ x: -1 }, 'positions.x'],
      [{ x: 1.5 }, 'positions.x'],
      [{ x: 'one' }, 'positions.x'],
      [tooMany, 'positions'],
    ] as const) {
      socket.send({ type: 'resume', positions })
      const error = await socket.nextOfType('error')
      expect({ field, code: error.error.code, fields: error.error.details.map((d: { field: string }) => d.field) }).toEqual({ field, code: 'validation_failed', fields: [field] })
    }
    socket.send({ type: 'resume', positions: {} })
    await socket.nextOfType('resumed')
  })
})

type View = {
  title: string
  members: Set<string>
  messages: Map<string, { content: string; edited: boolean; deleted: boolean; replyTo: string | null; reactions: Set<string> }>
}

/** What a client keeps of a conversation, from change frames applied in event_seq order. */
function apply(view: View, change: Frame): void {
  if (change.type === 'read') return
  if (change.type === 'conversation_updated') {
    view.title = change.title
    return
  }
  if (change.type === 'member_added' || change.type === 'member_removed') {
    if (change.type === 'member_added') view.members.add(change.user_id)
    else view.members.delete(change.user_id)
    return
  }
  if (change.type === 'reaction') {
    const message = view.messages.get(change.message_id)
    if (!message) throw new Error(`a reaction to an unknown message ${change.message_id}`)
    const key = `${change.emoji} ${change.user_id}`
    if (change.added) message.reactions.add(key)
    else message.reactions.delete(key)
    return
  }
  const m = change.message
  view.messages.set(m.id, {
    content: m.content,
    edited: m.edited_at !== null,
    deleted: m.deleted_at !== null,
    replyTo: m.reply_to,
    reactions: new Set(m.reactions.flatMap((r: { emoji: string; user_ids: string[] }) => r.user_ids.map((u) => `${r.emoji} ${u}`))),
  })
}

describe('resume: the property', () => {
  test('random sends, edits, deletions, reactions, members and titles while a client drops and resumes at random points: its view always equals a fresh load', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const alice = await account(t.app)
    const bob = await account(t.app)
    const carol = await account(t.app)
    const dave = await account(t.app)
    const group = await conversation(t.app, alice, [bob, carol], 'Property')
    const people = [alice, bob, carol]
    let daveIn = false
    const seed = Number(process.env.RESUME_SEED ?? 20261130)
    const random = mulberry32(seed)
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!
    const sent: Array<{ id: string; sender: Account }> = []
    const emojis = ['👍', '🎉', '👀']

    const view: View = { title: 'Property', members: new Set([alice.id, bob.id, carol.id]), messages: new Map() }
    let position = 0
    const applyFrame = (f: Frame) => {
      if (!isChange(f) || f.conversation_id !== group.id) return
      // In order, each once: the protocol's promise, checked on every frame.
      expect({ seed, event_seq: f.event_seq }).toEqual({ seed, event_seq: position + 1 })
      apply(view, f)
      position = f.event_seq
    }
    let socket: TestSocket | null = null
    let applied = 0
    const connect = async () => {
      socket = await TestSocket.open(`${ws}?token=${bob.token}&resume=1`)
      applied = socket.received.length
      socket.send({ type: 'resume', positions: { [group.id]: position } })
    }
    const drain = async () => {
      if (!socket) return
      await socket.drain()
      for (; applied < socket.received.length; applied++) applyFrame(socket.received[applied]!)
    }
    await connect()

    for (let step = 0; step < 150; step++) {
      const roll = random()
      const who = pick(people)
      if (roll < 0.08 && socket !== null) {
        // Bob's connection drops; what was delivered before is applied, the rest is replayed.
        await drain()
        const dropped: TestSocket = socket
        dropped.close()
        await dropped.closed
        socket = null
      } else if (roll < 0.14 && socket === null) {
        await connect()
      } else if (roll < 0.55 || sent.length === 0) {
        const replyTo = sent.length > 0 && random() < 0.2 ? pick(sent).id : undefined
        const reply = await call(t.app, 'POST', '/messages', { token: who.token, body: { message_id: crypto.randomUUID(), conversation_id: group.id, content: `step ${step}`, reply_to: replyTo } })
        expect(reply.status).toBe(201)
        sent.push({ id: reply.body.id, sender: who })
      } else if (roll < 0.7) {
        const target = pick(sent)
        await edit(t, target.sender, target.id, `edited at step ${step}`)
      } else if (roll < 0.78) {
        const target = pick(sent)
        await remove(t, target.sender, target.id)
      } else if (roll < 0.84) {
        // Dave comes and goes: added by anyone, leaving by himself or removed by the creator.
        if (daveIn) expect((await call(t.app, 'DELETE', `/conversations/${group.id}/members/${dave.id}`, { token: (random() < 0.5 ? dave : alice).token })).status).toBe(204)
        else expect((await call(t.app, 'POST', `/conversations/${group.id}/members`, { token: who.token, body: { member_ids: [dave.id] } })).status).toBe(200)
        daveIn = !daveIn
      } else if (roll < 0.88) {
        expect((await call(t.app, 'PATCH', `/conversations/${group.id}`, { token: who.token, body: { title: `Title ${step}` } })).status).toBe(200)
      } else {
        await react(t, who, pick(sent).id, pick(emojis), random() < 0.7)
      }
      if (socket !== null && random() < 0.3) await drain()
    }
    if (socket === null) await connect()
    const final = Number((await t.sql<{ n: number }>('SELECT last_event_seq AS n FROM conversations WHERE id = ?', group.id))[0]!.n)
    // The pong comes after the resume's answer, and after every change published before it.
    await drain()
    expect(position).toBe(final)

    const now = (await call(t.app, 'GET', '/conversations', { token: bob.token })).body.conversations.find((c: { id: string }) => c.id === group.id)
    const fresh: View = { title: now.title, members: new Set(now.members), messages: new Map() }
    const history = (await call(t.app, 'GET', `/conversations/${group.id}/messages?limit=200`, { token: bob.token })).body.messages
    for (const message of history) apply(fresh, { type: 'message', message })
    expect({ seed, title: view.title, members: [...view.members].sort(), messages: [...view.messages] }).toEqual({
      seed,
      title: fresh.title,
      members: [...fresh.members].sort(),
      messages: [...fresh.messages],
    })
    ;(socket as TestSocket | null)?.close()
  }, 60_000)
})
