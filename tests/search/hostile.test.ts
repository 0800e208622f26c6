import { describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { searchTerms, snippetHtml } from '../../src/search/service'
import { DomainError } from '../../src/shared/errors'
import { testApp, type TestApp } from '../support/app'
import { account, call, conversation, send, type Account } from '../support/http'

/** Hostile queries and hostile messages: every query answers 200 or 422, and a snippet is escaped text with our marks only. */

/** A snippet holds our <mark> tags and escaped text, nothing else: no other tag, and marks open and close in turn. */
function expectSafeSnippet(snippet: string) {
  const tags: string[] = snippet.match(/<\/?mark>/g) ?? []
  expect(tags, snippet).toEqual(tags.map((_, i) => (i % 2 === 0 ? '<mark>' : '</mark>')))
  const text = snippet.replace(/<\/?mark>/g, '')
  expect(text, snippet).not.toMatch(/[<>"']/)
  expect(text.includes('\u0002') || text.includes('\u0003'), snippet).toBe(false)
  // Every & begins an entity that Bun.escapeHTML writes.
  expect(text.replace(/&(amp|lt|gt|quot|#x27|#39);/g, ''), snippet).not.toContain('&')
}

const search = (t: TestApp, who: Account, q: string) => call(t.app, 'GET', `/search?q=${encodeURIComponent(q)}`, { token: who.token })

describe('hostile messages in snippets', () => {
  test('<script>, <mark> and quotes in a message are escaped in its snippet; only the matches are marked', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const bob = await account(t.app)
    const room = await conversation(t.app, alice, [bob])
    await send(t.app, alice, room.id, 'alert <script>alert("x")</script> & <mark>fake</mark> \'quoted\'')
    const reply = await search(t, bob, 'alert')
    expect(reply.status).toBe(200)
    const [{ snippet }] = reply.body.results
    expect(snippet).toBe('<mark>alert</mark> &lt;script&gt;<mark>alert</mark>(&quot;x&quot;)&lt;/script&gt; &amp; &lt;mark&gt;fake&lt;/mark&gt; &#x27;quoted&#x27;')
    expectSafeSnippet(snippet)
    const fake = (await search(t, bob, 'fake')).body.results[0].snippet
    expect(fake).toContain('&lt;mark&gt;<mark>fake</mark>&lt;/mark&gt;')
    expectSafeSnippet(fake)
  })

  test("a message that holds the engine's own mark characters gets a snippet without marks, escaped", async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const room = await conversation(t.app, alice, [await account(t.app)])
    await send(t.app, alice, room.id, 'forged \u0002<img src=x onerror=alert(1)>\u0003 marks')
    await send(t.app, alice, room.id, 'unbalanced \u0003 forged mark')
    for (const q of ['forged', 'img', 'onerror']) {
      for (const { snippet } of (await search(t, alice, q)).body.results) {
        expectSafeSnippet(snippet)
        expect(snippet).not.toContain('<mark>')
      }
    }
    expect((await search(t, alice, 'onerror')).body.results.map((r: { snippet: string }) => r.snippet)).toEqual(['forged &lt;img src=x onerror=alert(1)&gt; marks'])
  })

  test('snippetHtml trusts no engine output: marks must alternate, and a message holding a mark character is shown without any', () => {
    expect(snippetHtml('a \u0002b\u0003 <c>', 'a b <c>')).toBe('a <mark>b</mark> &lt;c&gt;')
    expect(snippetHtml('a \u0002b\u0002 c', 'a b c')).toBe('a b c')
    expect(snippetHtml('a \u0003b\u0003 c', 'a b c')).toBe('a b c')
    expect(snippetHtml('a \u0002b c', 'a b c')).toBe('a b c')
    expect(snippetHtml(null, '<b>x</b>')).toBe('&lt;b&gt;x&lt;/b&gt;')
    expect(snippetHtml('\u0002x\u0003', 'x\u0002')).toBe('x')
    expect(snippetHtml(null, 'y'.repeat(500))).toBe(`${'y'.repeat(160)}…`)
  })
})

/** The strings people and attackers send to a search box. */
const HOSTILE = [
  '"',
  '""',
  '"unbalanced',
  '*',
  'a*',
  '*a',
  'NEAR(a b)',
  'NEAR(a b, 1)',
  'a AND b OR c NOT d',
  'AND',
  'OR OR OR',
  'NOT',
  '-x',
  'col:x',
  'content:x',
  '{content}:x',
  '(',
  ')',
  '(a OR b',
  '^a',
  'a + b',
  "'",
  "''",
  "a'b",
  '\\',
  'a\\',
  "'\\'",
  ':*',
  'a:*',
  'a:*B',
  '!a',
  'a <-> b',
  'a <2> b',
  'a & b | !c',
  '%',
  '_',
  '%_%',
  '😀',
  '👩🏽‍💻 dev',
  'the a of and to',
  '.',
  '?!,;',
  '\u200b',
  'x\u0301',
  '\u0301',
  '\uFEFFword',
  '東',
  '東京',
  'ﷺ',
  '٣',
  '\u202Egnp',
  'a'.repeat(200),
  `${'a'.repeat(199)}*`,
  'x '.repeat(100),
  '<script>alert(1)</script>',
  '<mark>',
  '\u0002a\u0003',
  '\u0004<',
  '&amp;',
  'NULL',
  "'; DROP TABLE messages; --",
  '1.5',
  'e-mail',
  'a@b.c',
  'https://x.y/z',
  '/usr/bin',
]

describe('hostile queries answer 200 or 422, never 500', () => {
  test('FTS and tsquery syntax, quotes, stop words, punctuation, emoji, long text', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const room = await conversation(t.app, alice, [await account(t.app)])
    for (const content of ['a b c d the of and', 'NEAR content col x AND OR NOT', "it's a 1.5 e-mail a@b.c https://x.y/z /usr/bin", '東京タワー 😀 café']) {
      await send(t.app, alice, room.id, content)
    }
    for (const q of [...HOSTILE, 'q'.repeat(10_240)]) {
      const reply = await search(t, alice, q)
      expect([200, 422], `${JSON.stringify(q.slice(0, 40))}: ${JSON.stringify(reply.body).slice(0, 300)}`).toContain(reply.status)
      if (reply.status === 200) for (const { snippet } of reply.body.results) expectSafeSnippet(snippet)
      else expect(reply.body.error.details[0].field).toBe('q')
    }
  })

  test('a query that is not valid UTF-8, or holds NUL, is refused with 422', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    for (const raw of ['%ED%A0%80', '%FF', 'a%00b', '%C0%AF']) {
      const reply = await call(t.app, 'GET', `/search?q=${raw}`, { token: alice.token })
      expect([200, 422], raw).toContain(reply.status)
    }
    expect((await call(t.app, 'GET', '/search?q=a%00b', { token: alice.token })).status).toBe(422)
  })

  test('any string at all: 200 with safe snippets, or 422 on q (property)', async () => {
    await using t = await testApp()
    const alice = await account(t.app)
    const room = await conversation(t.app, alice, [await account(t.app)])
    await send(t.app, alice, room.id, 'some text to find: a b c the deployment "quoted" <tag> café')
    const pieces = fc.constantFrom(...HOSTILE, ' ', 'a', 'dep', 'café', 'the')
    const query = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 80 }),
      fc.string({ unit: 'binary', maxLength: 80 }),
      fc.array(pieces, { maxLength: 12 }).map((parts) => parts.join(' ')),
      fc.array(pieces, { maxLength: 6 }).map((parts) => parts.join('')),
    )
    await fc.assert(
      fc.asyncProperty(query, async (q) => {
        // What the service makes of it: words, or 422 on q.
        try {
          searchTerms(q)
        } catch (error) {
          expect(error).toBeInstanceOf(DomainError)
          expect((error as DomainError).status).toBe(422)
        }
        const reply = await call(t.app, 'GET', `/search?${new URLSearchParams({ q })}`, { token: alice.token })
        expect([200, 422]).toContain(reply.status)
        if (reply.status === 200) for (const { snippet } of reply.body.results) expectSafeSnippet(snippet)
        else expect(reply.body.error.details[0].field).toBe('q')
      }),
      { numRuns: 150 },
    )
  })
})
