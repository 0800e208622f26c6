import { describe, expect, test } from 'bun:test'
import { testApp, type TestApp } from '../support/app'
import { FormClient, signedInBrowser as person } from '../support/form-client'
import { call } from '../support/http'

// The web UI's search box: GET /ui/search through the search service, with htmx (the results, the
// next page) and without (the chat page with them in the sidebar); hostile messages shown escaped,
// refusals shown, never a 500.

const HTMX = { 'hx-request': 'true' }


async function say(t: TestApp, who: { token: string }, conversationId: string, content: string): Promise<string> {
  const reply = await call(t.app, 'POST', '/messages', { token: who.token, body: { message_id: crypto.randomUUID(), conversation_id: conversationId, content } })
  if (reply.status !== 201) throw new Error(`send failed: ${reply.status} ${JSON.stringify(reply.body)}`)
  return reply.body.id
}

async function group(t: TestApp) {
  const alice = await person(t, 'Alice Smith')
  const bob = await person(t, 'Bob <b>Builder</b>')
  const { location } = await alice.client.post('/ui/groups', { title: 'Launch <i>Team</i>', usernames: bob.username })
  return { alice, bob, id: location!.split('/').pop()! }
}

const search = (client: FormClient, q: string, extra: Record<string, string> = {}, headers: Record<string, string> = HTMX) =>
  client.get(`/ui/search?${new URLSearchParams({ q, ...extra })}`, headers)

/** The markup has no tag of a message's making: every < and > in it is one the views wrote. */
function expectNoInjectedMarkup(body: string) {
  expect(body).not.toContain('<script>')
  expect(body).not.toContain('<b>Builder')
  expect(body).not.toContain('<i>Team')
  expect(body).not.toMatch(/<mark>fake/)
  expect(body).not.toContain('<img')
}

describe('the search box', () => {
  test('with htmx: the results, each with its conversation, sender, and snippet marked, linking to the message in its conversation', async () => {
    await using t = await testApp()
    const { alice, bob, id } = await group(t)
    const message = await say(t, bob, id, 'The deployment is on Friday')
    await say(t, bob, id, 'unrelated')
    const reply = await search(alice.client, 'deplo')
    expect(reply.status).toBe(200)
    expect(reply.headers.get('content-type')).toStartWith('text/html')
    expect(reply.body).toStartWith('<ol class="search-list" aria-label="Search results">')
    expect(reply.body).toContain(`<a href="/c/${id}#msg-${message}" data-message-id="${message}" data-conversation-id="${id}">`)
    expect(reply.body).toContain('<span class="snippet">The <mark>deployment</mark> is on Friday</span>')
    expect(reply.body).toContain('Launch &lt;i&gt;Team&lt;/i&gt;')
    expect(reply.body).toContain(`<bdi>Bob &lt;b&gt;Builder&lt;/b&gt;</bdi> <span class="username">@${bob.username}</span>`)
    expect(reply.body.match(/class="search-result"/g)).toHaveLength(1)
  })

  test('hostile messages: <script>, <mark> and an <img> in a message are escaped in the snippet and in the page', async () => {
    await using t = await testApp()
    const { alice, bob, id } = await group(t)
    await say(t, bob, id, 'hostile <script>alert(1)</script> <mark>fake</mark> <img src=x onerror=alert(2)>')
    for (const reply of [await search(alice.client, 'hostile'), await search(alice.client, 'hostile', {}, {})]) {
      expect(reply.status).toBe(200)
      expect(reply.body).toContain('<mark>hostile</mark> &lt;script&gt;alert(1)&lt;/script&gt; &lt;mark&gt;fake&lt;/mark&gt; &lt;img src=x onerror=alert(2)&gt;')
      expectNoInjectedMarkup(reply.body)
    }
    // A query with markup in it is shown back escaped too.
    const none = await search(alice.client, '<script>nothing</script>', {}, {})
    expect(none.status).toBe(200)
    expect(none.body).toContain('value="&lt;script&gt;nothing&lt;/script&gt;"')
    expect(none.body).toContain('No messages found for “&lt;script&gt;nothing&lt;/script&gt;”')
    expectNoInjectedMarkup(none.body)
  })

  test('without JavaScript: the chat page, with the query in the box and the results under it', async () => {
    await using t = await testApp()
    const { alice, id } = await group(t)
    const message = await say(t, alice, id, 'release notes are out')
    const reply = await search(alice.client, 'release', {}, {})
    expect(reply.status).toBe(200)
    expect(reply.headers.get('content-security-policy')).toContain("script-src 'self'")
    expect(reply.body).toStartWith('<!doctype html>')
    expect(reply.body).toContain('<input id="search-q" type="search" name="q" placeholder="Search messages…" maxlength="200" autocomplete="off" value="release">')
    expect(reply.body).toContain(`href="/c/${id}#msg-${message}"`)
    expect(reply.body).toContain('<mark>release</mark> notes are out')
  })

  test('the next page: "More results" brings it in its place, each match once', async () => {
    await using t = await testApp()
    const { alice, id } = await group(t)
    for (let i = 0; i < 23; i++) await say(t, alice, id, `standup ${i}`)
    const first = await search(alice.client, 'standup')
    expect(first.body.match(/class="search-result"/g)).toHaveLength(20)
    const more = /<li class="search-more"><a class="load-more" href="([^"]+)" hx-get="([^"]+)" hx-target="closest li" hx-swap="outerHTML">More results<\/a><\/li>/.exec(first.body)
    expect(more).not.toBeNull()
    expect(more![1]).toBe(more![2])
    const next = await alice.client.get(more![1]!.replaceAll('&amp;', '&'), HTMX)
    expect(next.status).toBe(200)
    expect(next.body).toStartWith('<li class="search-result">')
    expect(next.body.match(/class="search-result"/g)).toHaveLength(3)
    expect(next.body).not.toContain('search-more')
    const ids = (body: string) => [...body.matchAll(/data-message-id="([^"]+)"/g)].map((m) => m[1])
    expect(new Set([...ids(first.body), ...ids(next.body)]).size).toBe(23)
  })

  test('refusals are shown where the results go, with their status: a query without words, too long, a bad cursor; an empty box shows nothing', async () => {
    await using t = await testApp()
    const { alice } = await group(t)
    const noWords = await search(alice.client, '?!')
    expect(noWords).toMatchObject({ status: 422, body: '<p class="form-error" role="alert">Search must hold a word to search for (letters or digits)</p>' })
    expect((await search(alice.client, 'x'.repeat(201))).body).toContain('Search must be at most 200 characters')
    const badCursor = await search(alice.client, 'x', { cursor: 'nope' })
    expect(badCursor).toMatchObject({ status: 422, body: '<li class="search-more"><p class="form-error" role="alert">More results must be the next_cursor of an earlier page of the same search</p></li>' })
    expect(await search(alice.client, '')).toMatchObject({ status: 200, body: '' })
    expect(await search(alice.client, '   ')).toMatchObject({ status: 200, body: '' })
    const page = await search(alice.client, '?!', {}, {})
    expect(page.status).toBe(422)
    expect(page.body).toContain('Search must hold a word to search for')
  })

  test('only what the viewer may see: another group\'s messages are not found; signed out, htmx is sent to sign in', async () => {
    await using t = await testApp()
    const { alice } = await group(t)
    const carol = await person(t, 'Carol')
    const dave = await person(t, 'Dave')
    const { location } = await carol.client.post('/ui/groups', { title: 'Private', usernames: dave.username })
    await say(t, carol, location!.split('/').pop()!, 'the secret plan')
    expect((await search(alice.client, 'secret')).body).toContain('No messages found')
    expect((await search(dave.client, 'secret')).body).toContain('<mark>secret</mark> plan')
    const stranger = new FormClient(t.app)
    const reply = await search(stranger, 'secret')
    expect(reply.status).toBe(401)
    expect(reply.headers.get('hx-redirect')).toBe('/')
  })
})
