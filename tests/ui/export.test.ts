import { afterAll, describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { listen, testApp } from '../support/app'
import { closeBrowser, person, skipBrowserTests } from '../support/browser'
import { FormClient, signedInBrowser as signedIn } from '../support/form-client'
import { account, call, conversation, send } from '../support/http'
import { logIn, noProblems, open } from '../support/ui'

// The web UI's Export: a link in each conversation's header to /c/{id}/export, which answers the
// API's export (the same service) to the browser's session.

afterAll(closeBrowser)

/** A signed-up, signed-in browser session, with the user's id and an API token. */

describe('GET /c/{id}/export', () => {
  test("answers a member the API's export as NDJSON to download, with the session's cookies", async () => {
    await using t = await testApp()
    const alice = await signedIn(t)
    const bob = await signedIn(t)
    const { location } = await alice.client.post('/ui/direct', { user_id: bob.id })
    const id = location!.split('/').pop()!
    for (const content of ['first', 'a "quoted" <b>second</b>\nline']) {
      expect((await call(t.app, 'POST', '/messages', { token: alice.token, body: { message_id: crypto.randomUUID(), conversation_id: id, content } })).status).toBe(201)
    }
    const reply = await bob.client.get(`/c/${id}/export`)
    expect(reply.status).toBe(200)
    expect(reply.headers.get('content-type')).toBe('application/x-ndjson')
    expect(reply.headers.get('content-disposition')).toBe(`attachment; filename="conversation-${id}.ndjson"`)
    const api = await t.app.handle(new Request(`http://localhost/conversations/${id}/export`, { headers: { authorization: `Bearer ${bob.token}` } }))
    expect(reply.body).toBe(await api.text())
    expect(reply.body.trimEnd().split('\n').map((line) => JSON.parse(line).content)).toEqual(['first', 'a "quoted" <b>second</b>\nline'])
  })

  test('refuses a non-member with a page saying so (403), an unknown conversation 404, and sends no session to sign in', async () => {
    await using t = await testApp()
    const alice = await signedIn(t)
    const bob = await signedIn(t)
    const carol = await signedIn(t)
    const { location } = await alice.client.post('/ui/direct', { user_id: bob.id })
    const id = location!.split('/').pop()!
    expect((await call(t.app, 'POST', '/messages', { token: alice.token, body: { message_id: 'secret', conversation_id: id, content: 'between us' } })).status).toBe(201)

    const refused = await carol.client.get(`/c/${id}/export`)
    expect(refused.status).toBe(403)
    expect(refused.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(refused.headers.get('content-disposition')).toBeNull()
    expect(refused.body).toContain('You are not a member of this conversation')
    expect(refused.body).not.toContain('between us')

    const unknown = await carol.client.get(`/c/${crypto.randomUUID()}/export`)
    expect(unknown.status).toBe(404)
    expect(unknown.body).toContain('Conversation not found')

    const anonymous = await new FormClient(t.app).get(`/c/${id}/export`)
    expect({ status: anonymous.status, location: anonymous.location }).toEqual({ status: 303, location: '/' })
    expect(anonymous.body).not.toContain('between us')
  })
})

describe.skipIf(skipBrowserTests)('Export in Chromium', () => {
  test('clicking Export in a conversation downloads its messages, one JSON object per line, oldest first', async () => {
    await using t = await testApp()
    const { http } = listen(t.app)
    const alice = await account(t.app, 'alice', 'Alice Liddell')
    const bob = await account(t.app, 'bob', 'Bob Builder')
    const { id } = await conversation(t.app, alice, [bob])
    const sent = ['Lunch at 12?', 'Sure — "the usual" <place>', 'See you\nthere']
    for (const [i, content] of sent.entries()) expect((await send(t.app, i % 2 ? bob : alice, id, content)).status).toBe(201)
    await using bobs = await person('bob', undefined, { acceptDownloads: true })
    await logIn(bobs, http, 'bob')
    await open(bobs, http, id)

    const [download] = await Promise.all([bobs.page.waitForEvent('download'), bobs.page.getByRole('link', { name: 'Export' }).click()])
    expect(download.suggestedFilename()).toBe(`conversation-${id}.ndjson`)
    const lines = readFileSync(await download.path(), 'utf8').trimEnd().split('\n').map((line) => JSON.parse(line))
    expect(lines.map((m) => [m.seq, m.content, m.sender_id])).toEqual(sent.map((content, i) => [i + 1, content, i % 2 ? bob.id : alice.id]))
    // The page stays where it was.
    expect(bobs.page.url()).toBe(`${http}/c/${id}`)
    noProblems(bobs)
  }, 60_000)
})
