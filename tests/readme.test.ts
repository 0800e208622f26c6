/**
 * The README's API examples, run as a reader would run them: its shell blocks, verbatim but for the
 * server's address, in bash with curl and jq, against a real server process with the default
 * configuration on a new data directory.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServer, type ServerProcess } from './support/process'
import { DEPLOY_NGINX_CONF } from './support/tls-proxy'

const README = readFileSync(join(import.meta.dir, '..', 'README.md'), 'utf8')

/** The first fenced block of `language` after `heading`. */
function blockAfter(heading: string, language: string): string {
  const from = README.indexOf(`\n${heading}\n`)
  if (from === -1) throw new Error(`README has no heading "${heading}"`)
  const match = new RegExp('```' + language + '\\n([\\s\\S]*?)\\n```').exec(README.slice(from))
  if (!match) throw new Error(`README has no ${language} block after "${heading}"`)
  return match[1]!
}

test('"Run several nodes" shows deploy/nginx.conf as it is, the configuration the cluster and proxy tests run behind', () => {
  expect(`${blockAfter('### Run several nodes', 'nginx')}\n`).toBe(readFileSync(DEPLOY_NGINX_CONF, 'utf8'))
})

// jq is the one tool the examples need that a fresh machine may lack (.ci/run installs it).
const jqMissing = Bun.which('jq') === null
if (jqMissing && process.env.CI !== 'true') console.warn('[README examples] SKIPPED: jq not found; install it with `apt-get install -y jq`. With CI=true these tests fail instead.')

let server: ServerProcess
let dir: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pneumatic-readme-'))
  server = await startServer({ DATABASE_URL: `sqlite:${join(dir, 'pneumatic.db')}` })
})

afterAll(async () => {
  server.process.kill('SIGTERM')
  await server.process.exited
  rmSync(dir, { recursive: true, force: true })
})

/** What a run printed, in order: each JSON document parsed, and every other line as it is. */
function printed(stdout: string): unknown[] {
  const out: unknown[] = []
  let pending = ''
  for (const line of stdout.split('\n')) {
    if (pending === '' && !line.startsWith('{')) {
      if (line.trim() !== '') out.push(line.trim())
      continue
    }
    pending += line + '\n'
    try {
      out.push(JSON.parse(pending))
      pending = ''
    } catch {
      // not complete yet: jq prints a document over several lines
    }
  }
  return out
}

/** Runs a shell block in bash, stopping at the first command that fails; the README's address becomes the test server's. */
async function run(script: string, base = server.base): Promise<{ code: number; stdout: string; stderr: string }> {
  const here = script.replaceAll('http://localhost:8000', base)
  const shell = Bun.spawn(['bash', '-e', '-o', 'pipefail', '-c', here], { cwd: dir, stdout: 'pipe', stderr: 'pipe' })
  const [stdout, stderr, code] = await Promise.all([new Response(shell.stdout).text(), new Response(shell.stderr).text(), shell.exited])
  return { code, stdout, stderr }
}

describe.skipIf(jqMissing && process.env.CI !== 'true')("the README's examples, verbatim", () => {
  test('"Using the API" runs through in order: accounts, a 1-on-1, a group, a message and its replay, history, an edit, a reaction, a reply and a deletion, the change stream, a rename, read positions, refresh, logout', async () => {
    const { code, stdout, stderr } = await run(blockAfter('## Using the API', 'bash'))
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
    const [alice, bob, me, message, replayed, page, catchUp, edited, reacted, deleted, ...rest] = printed(stdout) as any[]
    const events = rest.splice(0, 5)
    const [renamed, readStatus, reads, list, secondPage, ...statuses] = rest
    expect(alice).toEqual({ id: expect.any(String), username: 'alice', full_name: 'Alice Smith' })
    expect(bob).toEqual({ id: expect.any(String), username: 'bob', full_name: null })
    expect(me).toEqual({ id: expect.any(String), username: 'alice', full_name: 'Alice Smith' })
    expect(message).toMatchObject({ message_id: 'hello-1', content: 'Hello!', seq: 1 })
    expect(replayed.toLowerCase()).toBe('idempotent-replayed: true')
    expect(page.messages).toHaveLength(1)
    expect(catchUp.messages).toHaveLength(1)
    expect(edited).toMatchObject({ id: page.messages[0].id, content: 'Hello, team!', edited_at: expect.any(String) })
    expect([reacted, deleted]).toEqual(['204', '204'])
    expect(events).toEqual([
      { type: 'message', event_seq: 1 },
      { type: 'message_edited', event_seq: 2 },
      { type: 'reaction', event_seq: 3 },
      { type: 'message', event_seq: 4 },
      { type: 'message_deleted', event_seq: 5 },
    ])
    expect(renamed).toEqual({ title: 'Launch Team', last_event_seq: 6 })
    expect(readStatus).toBe('204')
    expect(reads).toEqual({ reads: [{ user_id: alice.id, seq: 0 }, { user_id: bob.id, seq: 1 }] })
    // Bob's conversations: the group and the 1-on-1, named after Alice.
    expect(list.conversations.map((c: { is_group: boolean; display_name: string }) => [c.is_group, c.display_name])).toEqual([
      [true, 'Launch Team'],
      [false, 'Alice Smith'],
    ])
    expect(list.next_cursor).toBeNull()
    // Bob has read the group up to seq 1, after which only his own, deleted, reply came.
    expect(list.conversations[0]).toMatchObject({ last_read_seq: 1, unread_count: 0, last_event_seq: 7 })
    // The same list a page of one at a time: the second page, through the first one's cursor, is the last.
    expect(secondPage.conversations.map((c: { display_name: string }) => c.display_name)).toEqual(['Alice Smith'])
    expect(secondPage.next_cursor).toBeNull()
    // Logout and logout-all say what the comments promise.
    expect(statuses).toEqual(['204', '204'])
  })

  test('"Search" runs after "Using the API", in the same shell: a prefix and a folded diacritic found and marked, two pages through a cursor, a query without words refused', async () => {
    // A server of its own: the blocks run from the start, as a reader runs them, one after the other.
    const own = mkdtempSync(join(tmpdir(), 'pneumatic-readme-search-'))
    const fresh = await startServer({ DATABASE_URL: `sqlite:${join(own, 'pneumatic.db')}` })
    try {
      const script = `${blockAfter('## Using the API', 'bash')}\necho SEARCH\n${blockAfter('### Search', 'bash')}`
      const { code, stdout, stderr } = await run(script, fresh.base)
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
      const all = printed(stdout)
      const [found, first, second, refused, ...rest] = all.slice(all.indexOf('SEARCH') + 1) as any[]
      expect(rest).toEqual([])
      expect(found.results.map((r: { message: { content: string }; snippet: string }) => [r.message.content, r.snippet])).toEqual([
        ['Hello again: the deployment is on Friday, at the café', 'Hello again: the <mark>deployment</mark> is on Friday, at the <mark>café</mark>'],
      ])
      expect(found.results[0].message).toMatchObject({ message_id: 'deploy-1', edited_at: null, deleted_at: null, reactions: [] })
      expect(found.next_cursor).toBeNull()
      expect(first).toEqual({ snippets: ['<mark>Hello</mark> again: the deployment is on Friday, at the café'], next_cursor: expect.any(String) })
      expect(second).toEqual({ snippets: ['<mark>Hello</mark>, team!'], next_cursor: null })
      expect(refused).toEqual({ code: 'validation_failed', message: 'q must hold a word to search for (letters or digits)', details: [{ field: 'q', message: 'must hold a word to search for (letters or digits)' }] })
    } finally {
      fresh.process.kill('SIGTERM')
      await fresh.process.exited
      rmSync(own, { recursive: true, force: true })
    }
  }, 60_000)

  test('the WebSocket client sends over the socket and sees its own message come back', async () => {
    const { code, stdout, stderr } = await run(blockAfter('### WebSocket', 'bash'))
    expect(code).toBe(0)
    const frames = stdout.trim().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line))
    expect(frames[0]).toEqual({ type: 'ready', user_id: expect.any(String) })
    expect(frames.at(-1)).toMatchObject({ type: 'message', message: { content: 'Hello over the socket!' } })
    expect(stderr).not.toMatch(/error/i)
  }, 60_000)

  test("typing and presence: Alice's socket is told Bob came online and is typing, and GET /users says he is online", async () => {
    const { code, stdout, stderr } = await run(blockAfter('### Typing and presence', 'bash'))
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
    const [presence, typing, ...users] = printed(stdout) as any[]
    expect(presence).toEqual({ type: 'presence', user_id: expect.any(String), online: true })
    expect(typing).toEqual({ type: 'typing', conversation_id: expect.any(String), user_id: presence.user_id })
    expect(users.find((u) => u.username === 'bob')).toEqual({ username: 'bob', online: true, last_seen_at: null })
  }, 60_000)

  test('"Export" downloads the group as NDJSON: the edited greeting with its reaction, the deleted answer, then anything sent since, oldest first', async () => {
    const { code, stdout, stderr } = await run(blockAfter('### Export', 'bash'))
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
    const lines = printed(stdout) as any[]
    expect(lines.slice(0, 2)).toEqual([
      { seq: 1, content: 'Hello, team!', edited: true, deleted: false, reactions: ['👍'] },
      { seq: 2, content: '', edited: false, deleted: true, reactions: [] },
    ])
    // The WebSocket example's message, when it ran before.
    expect(lines.slice(2)).toEqual(lines.slice(2).map((_, i) => ({ seq: i + 3, content: 'Hello over the socket!', edited: false, deleted: false, reactions: [] })))
  })
})
