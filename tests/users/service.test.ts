import { describe, expect, test } from 'bun:test'
import { byIds, checkFullName } from '../../src/users/service'
import { testApp } from '../support/app'
import { thrown, user } from '../support/services'

describe('checkFullName: the one rule for a full name', () => {
  test.each([
    ['NUL', 'Alice\u0000Smith'],
    ['a tab', 'Alice\tSmith'],
    ['a line break', 'Alice\nSmith'],
    ['a C1 control', 'Alice\u0085Smith'],
    ['DEL', 'Alice\u007f'],
    ['a line separator', 'Alice\u2028Smith'],
    ['a right-to-left override', '\u202Egnp.exe'],
    ['a left-to-right embedding', '\u202AAlice'],
    ['a pop of a directional formatting', 'Alice\u202C'],
    ['a right-to-left isolate', 'Alice \u2067Smith\u2069'],
    ['a first-strong isolate', '\u2068Alice\u2069'],
    ['a right-to-left mark', 'Alice\u200F'],
    ['a left-to-right mark', '\u200EAlice'],
    ['an Arabic letter mark', 'Alice\u061C'],
  ])('refuses a name with %s: 422 naming full_name', async (_, name) => {
    const error = await thrown(() => checkFullName(name))
    expect(error.status).toBe(422)
    expect(error.code).toBe('validation_failed')
    expect(error.details?.map((d) => d.field)).toEqual(['full_name'])
  })

  test.each([
    ['zero-width spaces', '\u200B\u200B'],
    ['a zero-width joiner and non-joiner', '\u200D\u200C'],
    ['a word joiner', '\u2060'],
    ['a byte-order mark', '\uFEFF'],
    ['combining marks alone', '\u0301\u0302\u0303'],
    ['Hangul fillers', '\u3164\u115F'],
    ['a blank braille pattern', '\u2800'],
    ['a soft hyphen', '\u00AD'],
    ['no-break and ideographic spaces', '\u00A0\u3000'],
    ['blanks', '   '],
    ['nothing', ''],
  ])('takes a name of only %s as none, like a blank one', async (_, name) => {
    expect(checkFullName(name)).toBeNull()
  })

  test.each([
    ['plain', 'Alice Smith'],
    ['accented, with a combining mark', 'Jose\u0301 Garci\u0301a'],
    ['Arabic, right to left without any control', 'محمد علي'],
    ['Hebrew and Latin mixed', 'דוד Cohen'],
    ['Persian with a zero-width non-joiner', 'می\u200Cخواهم'],
    ['Devanagari with a zero-width joiner', 'क्\u200Dष'],
    ['an emoji sequence with joiners', 'Dev 👩🏽\u200D💻'],
  ])('keeps a %s name exactly, trimmed', async (_, name) => {
    expect(checkFullName(`  ${name} `)).toBe(name)
  })

  test('refuses a name over the length limit', async () => {
    expect((await thrown(() => checkFullName('x'.repeat(101)))).details?.map((d) => d.field)).toEqual(['full_name'])
  })
})

describe('names stored before the rule', () => {
  test('are shown without their control and bidi control characters, and one with nothing visible as none', async () => {
    await using t = await testApp()
    const stored = [await user(t, 'Alice\u202E htims'), await user(t, 'Bob\u0000'), await user(t, '\u200B'), await user(t, '\u2066\u200F'), await user(t, 'Carol King')]
    const shown = new Map((await byIds(t.deps.store, stored.map((u) => u.id))).map((u) => [u.id, u.full_name]))
    expect(stored.map((u) => shown.get(u.id))).toEqual(['Alice htims', 'Bob', null, null, 'Carol King'])
  })
})
