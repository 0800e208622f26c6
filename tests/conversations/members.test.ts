import { describe, expect, test } from 'bun:test'
import { listen, testApp, type TestApp } from '../support/app'
import { account, call, conversation, send, type Account } from '../support/http'
import { TestSocket } from '../support/ws'

/** Group membership and titles (issue 17): REST and WebSocket, numbered in the change stream. */

const addMembers = (t: TestApp, who: Account, id: string, memberIds: string[]) => call(t.app, 'POST', `/conversations/${id}/members`, { token: who.token, body: { member_ids: memberIds } })
const removeMember = (t: TestApp, who: Account, id: string, userId: string) => call(t.app, 'DELETE', `/conversations/${id}/members/${userId}`, { token: who.token })
const rename = (t: TestApp, who: Account, id: string, title: unknown) => call(t.app, 'PATCH', `/conversations/${id}`, { token: who.token, body: { title } })
const historyStatus = async (t: TestApp, who: Account, id: string) => (await call(t.app, 'GET', `/conversations/${id}/messages`, { token: who.token })).status

async function team(t: TestApp) {
  const alice = await account(t.app)
  const bob = await account(t.app)
  const carol = await account(t.app)
  const dave = await account(t.app)
  const group = await conversation(t.app, alice, [bob, carol], 'Team')
  return { alice, bob, carol, dave, group }
}

describe('POST /conversations/{id}/members', () => {
  test('any member adds people: 200 with the group, they read its history, their socket is told of it and follows it live', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const { alice, bob, carol, dave, group } = await team(t)
    await send(t.app, alice, group.id, 'before dave')
    using aliceSocket = await TestSocket.open(`${ws}?token=${alice.token}`)
    using daveSocket = await TestSocket.open(`${ws}?token=${dave.token}`)
    const reply = await addMembers(t, bob, group.id, [dave.id, carol.id])
    expect(reply.status).toBe(200)
    expect(reply.body.members).toEqual([alice.id, bob.id, carol.id, dave.id])
    expect(reply.body.last_event_seq).toBe(2)
    const added = { type: 'member_added', conversation_id: group.id, event_seq: 2, user_id: dave.id, by: bob.id }
    expect(await aliceSocket.nextOfType('member_added')).toEqual(added)
    // Dave's socket: the conversation first, then his arrival, then what is said.
    const told = await daveSocket.next((f) => f.type === 'conversation' || f.type === 'member_added', 'the conversation')
    expect(told).toMatchObject({ type: 'conversation', conversation: { id: group.id, members: [alice.id, bob.id, carol.id, dave.id] } })
    expect(await daveSocket.nextOfType('member_added')).toEqual(added)
    await send(t.app, carol, group.id, 'welcome dave')
    expect((await daveSocket.nextOfType('message')).message.content).toBe('welcome dave')
    expect(await historyStatus(t, dave, group.id)).toBe(200)
    expect((await call(t.app, 'GET', `/conversations/${group.id}/messages`, { token: dave.token })).body.messages.map((m: { content: string }) => m.content)).toEqual(['before dave', 'welcome dave'])
    // Again: nothing changes.
    expect((await addMembers(t, carol, group.id, [dave.id])).body.last_event_seq).toBe(3)
  })

  test('refused: a non-member 403, an unknown id 422, a 1-on-1 409, no such conversation 404; nothing changes', async () => {
    await using t = await testApp()
    const { alice, bob, dave, group } = await team(t)
    const direct = await conversation(t.app, alice, [bob])
    expect(await addMembers(t, dave, group.id, [dave.id])).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } })
    expect(await addMembers(t, alice, group.id, [dave.id, 'no-such-user'])).toMatchObject({ status: 422, body: { error: { details: [{ field: 'member_ids' }] } } })
    expect(await addMembers(t, alice, group.id, [])).toMatchObject({ status: 422, body: { error: { details: [{ field: 'member_ids' }] } } })
    expect(await addMembers(t, alice, direct.id, [dave.id])).toMatchObject({ status: 409, body: { error: { code: 'not_a_group' } } })
    expect(await addMembers(t, alice, 'no-such-conversation', [dave.id])).toMatchObject({ status: 404 })
    expect(await historyStatus(t, dave, group.id)).toBe(403)
    expect(await historyStatus(t, dave, direct.id)).toBe(403)
  })
})

describe('DELETE /conversations/{id}/members/{user_id}', () => {
  test('a member leaves: their socket hears it and then nothing more of the group, and their reads are 403 at once', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const { alice, bob, group } = await team(t)
    await send(t.app, alice, group.id, 'hello')
    const bobs = (await send(t.app, bob, group.id, 'mine')).body
    // Bob's membership is remembered (he just read), and forgotten by his leaving.
    expect(await historyStatus(t, bob, group.id)).toBe(200)
    using bobSocket = await TestSocket.open(`${ws}?token=${bob.token}`)
    using aliceSocket = await TestSocket.open(`${ws}?token=${alice.token}`)
    expect((await removeMember(t, bob, group.id, bob.id)).status).toBe(204)
    const removed = { type: 'member_removed', conversation_id: group.id, event_seq: 3, user_id: bob.id, by: bob.id }
    expect(await bobSocket.nextOfType('member_removed')).toEqual(removed)
    expect(await aliceSocket.nextOfType('member_removed')).toEqual(removed)
    expect(await historyStatus(t, bob, group.id)).toBe(403)
    expect((await call(t.app, 'GET', `/conversations/${group.id}/events`, { token: bob.token })).status).toBe(403)
    expect((await send(t.app, bob, group.id, 'still here?')).status).toBe(403)
    // Not even his own message: he may no longer edit, delete or react in it.
    expect((await call(t.app, 'PATCH', `/messages/${bobs.id}`, { token: bob.token, body: { content: 'edited after leaving' } })).status).toBe(403)
    expect((await call(t.app, 'DELETE', `/messages/${bobs.id}`, { token: bob.token })).status).toBe(403)
    expect((await call(t.app, 'PUT', `/messages/${bobs.id}/reactions/${encodeURIComponent('👋')}`, { token: bob.token })).status).toBe(403)
    await send(t.app, alice, group.id, 'after bob left')
    await aliceSocket.nextOfType('message')
    await bobSocket.drain()
    expect(bobSocket.received.filter((f) => f.type === 'message')).toEqual([])
    expect((await call(t.app, 'GET', '/conversations', { token: bob.token })).body.conversations).toEqual([])
  })

  test("only the group's creator removes someone else; not a member 404; a 1-on-1 409", async () => {
    await using t = await testApp()
    const { alice, bob, carol, dave, group } = await team(t)
    const direct = await conversation(t.app, alice, [bob])
    expect(await removeMember(t, bob, group.id, carol.id)).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } })
    expect(await removeMember(t, alice, group.id, dave.id)).toMatchObject({ status: 404 })
    expect(await removeMember(t, alice, direct.id, bob.id)).toMatchObject({ status: 409, body: { error: { code: 'not_a_group' } } })
    expect((await removeMember(t, alice, group.id, carol.id)).status).toBe(204)
    expect(await historyStatus(t, carol, group.id)).toBe(403)
    // Removed again: no longer a member of it at all.
    expect((await removeMember(t, alice, group.id, carol.id)).status).toBe(404)
  })
})

describe('PATCH /conversations/{id}', () => {
  test('any member renames a group: 200, every socket gets conversation_updated; the same title changes nothing; bad titles 422; a 1-on-1 409', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const { alice, bob, group } = await team(t)
    const direct = await conversation(t.app, alice, [bob])
    using aliceSocket = await TestSocket.open(`${ws}?token=${alice.token}`)
    const reply = await rename(t, bob, group.id, '  Launch crew  ')
    expect(reply).toMatchObject({ status: 200, body: { title: 'Launch crew', display_name: 'Launch crew', last_event_seq: 1 } })
    expect(await aliceSocket.nextOfType('conversation_updated')).toEqual({ type: 'conversation_updated', conversation_id: group.id, event_seq: 1, title: 'Launch crew', by: bob.id })
    expect((await rename(t, alice, group.id, 'Launch crew')).body.last_event_seq).toBe(1)
    for (const title of ['', '   ', 'x'.repeat(101), null, 7]) {
      const refused = await rename(t, alice, group.id, title)
      expect({ title, status: refused.status, fields: refused.body.error?.details?.map((d: { field: string }) => d.field) }).toEqual({ title, status: 422, fields: ['title'] })
    }
    expect(await rename(t, alice, direct.id, 'Us')).toMatchObject({ status: 409, body: { error: { code: 'not_a_group' } } })
    const list = await call(t.app, 'GET', '/conversations', { token: alice.token })
    expect(list.body.conversations.find((c: { id: string }) => c.id === group.id).title).toBe('Launch crew')
  })
})

describe('group changes in the change stream and over WebSocket', () => {
  test('member and title changes replay in order with the messages; add_members, remove_member and rename frames follow the same rules', async () => {
    await using t = await testApp()
    const { ws } = listen(t.app)
    const { alice, bob, carol, dave, group } = await team(t)
    using aliceSocket = await TestSocket.open(`${ws}?token=${alice.token}`)
    using carolSocket = await TestSocket.open(`${ws}?token=${carol.token}`)
    await send(t.app, alice, group.id, 'one')
    aliceSocket.send({ type: 'add_members', conversation_id: group.id, member_ids: [dave.id] })
    await carolSocket.nextOfType('member_added')
    aliceSocket.send({ type: 'rename', conversation_id: group.id, title: 'Renamed' })
    await carolSocket.nextOfType('conversation_updated')
    // Nothing to change: answered to the sender alone, with the group as it is.
    aliceSocket.send({ type: 'rename', conversation_id: group.id, title: 'Renamed' })
    expect(await aliceSocket.nextOfType('conversation')).toMatchObject({ conversation: { id: group.id, title: 'Renamed' } })
    carolSocket.send({ type: 'remove_member', conversation_id: group.id, user_id: bob.id })
    expect(await carolSocket.nextOfType('error')).toMatchObject({ error: { code: 'forbidden' } })
    aliceSocket.send({ type: 'remove_member', conversation_id: group.id, user_id: bob.id })
    await carolSocket.nextOfType('member_removed')
    await send(t.app, carol, group.id, 'two')
    await carolSocket.nextOfType('message')
    const replay = (await call(t.app, 'GET', `/conversations/${group.id}/events`, { token: carol.token })).body.events
    expect(replay.map((e: { type: string; event_seq: number }) => [e.event_seq, e.type])).toEqual([
      [1, 'message'],
      [2, 'member_added'],
      [3, 'conversation_updated'],
      [4, 'member_removed'],
      [5, 'message'],
    ])
    await carolSocket.drain()
    const live = carolSocket.received.filter((f) => typeof f.event_seq === 'number')
    expect(live).toEqual(replay)
  })
})
