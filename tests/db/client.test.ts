import { describe, expect, spyOn, test } from 'bun:test'
import { observeQueries, type QueryObserver } from '../../src/db/client'
import { testApp } from '../support/app'

const recorder = () => {
  const seen: string[] = []
  const observer: QueryObserver = { statement: (operation) => void seen.push(operation), transaction: () => void seen.push('transaction') }
  return { seen, observer }
}

describe('observeQueries', () => {
  test('a connection is timed once however many observe it, and each observer hears every run, even of a statement prepared before it joined', async () => {
    await using t = testApp()
    const sqlite = t.deps.sqlite // the app already observes it (metrics, tracing)
    const early = sqlite.prepare('SELECT 1 AS one')
    const first = recorder()
    const second = recorder()
    observeQueries(sqlite, first.observer)
    observeQueries(sqlite, second.observer)
    const clock = spyOn(performance, 'now')
    try {
      early.get()
      expect(clock).toHaveBeenCalledTimes(2) // one start and one end: a single timing wrapper
      sqlite.transaction(() => sqlite.prepare('UPDATE users SET token_version = token_version WHERE 0').run())()
    } finally {
      clock.mockRestore()
    }
    expect(first.seen).toEqual(['select', 'update', 'transaction'])
    expect(second.seen).toEqual(first.seen)
  })
})
