import { describe, expect, spyOn, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { observeQueries, openDatabase, type QueryObserver } from '../../src/db/client'
import { sqliteOf, testApp } from '../support/app'

describe('openDatabase', () => {
  test('a database another program has locked for a moment is waited for, not refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pneumatic-locked-'))
    const path = join(dir, 'test.db')
    // Another program holds an exclusive lock on the file for half a second: the server's switch
    // to WAL needs that lock, so it must wait for it (busy_timeout), not fail with SQLITE_BUSY.
    const holder = Bun.spawn(
      [
        process.execPath,
        '-e',
        `const { Database } = require('bun:sqlite')
         const db = new Database(${JSON.stringify(path)})
         db.run('CREATE TABLE elsewhere (x)')
         db.run('BEGIN EXCLUSIVE')
         db.run('INSERT INTO elsewhere VALUES (1)')
         console.log('locked')
         setTimeout(() => { db.run('COMMIT'); db.close() }, 500)`,
      ],
      { stdout: 'pipe', stderr: 'inherit' },
    )
    try {
      const reader = holder.stdout.getReader()
      const first = await reader.read()
      expect(new TextDecoder().decode(first.value)).toContain('locked')
      const database = openDatabase(path)
      try {
        await expect(database.storage.probe()).resolves.toBeUndefined()
        expect(database.sqlite.query<{ x: number }, []>('SELECT x FROM elsewhere').all()).toEqual([{ x: 1 }])
        expect(database.sqlite.query<{ journal_mode: string }, []>('PRAGMA journal_mode').get()?.journal_mode).toBe('wal')
      } finally {
        database.close()
      }
      expect(await holder.exited).toBe(0)
    } finally {
      holder.kill()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

const recorder = () => {
  const seen: string[] = []
  const observer: QueryObserver = { statement: (operation) => void seen.push(operation), transaction: () => void seen.push('transaction') }
  return { seen, observer }
}

describe('observeQueries', () => {
  test('a connection is timed once however many observe it, and each observer hears every run, even of a statement prepared before it joined', async () => {
    await using t = await testApp()
    const sqlite = sqliteOf(t).sqlite // the app already observes it (metrics, tracing)
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
