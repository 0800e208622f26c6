import { expect, test } from 'bun:test'
import { rememberBounded } from '../../src/shared/bounded'

test('a bounded memory drops the key set least recently, so a key in use stays (the sequencer keeps the conversations it delivers to)', () => {
  const map = new Map<string, number>()
  for (const key of ['a', 'b', 'c']) rememberBounded(map, key, 1, 3)
  rememberBounded(map, 'a', 2, 3) // 'a' is used again
  rememberBounded(map, 'd', 1, 3) // one too many: 'b', set least recently, goes
  expect([...map]).toEqual([
    ['c', 1],
    ['a', 2],
    ['d', 1],
  ])
})
