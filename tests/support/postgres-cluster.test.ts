import { describe, expect, test } from 'bun:test'
import { existsSync } from 'node:fs'
import { sql as drizzleSql } from 'drizzle-orm'
import postgres from 'postgres'
import { openPostgres } from '../../src/db/postgres/connection'
import { observePostgres } from '../../src/db/postgres/observe'
import { postgresStorage, storageUnavailable } from '../../src/db/storage'
import { StorageUnavailable } from '../../src/shared/errors'
import { clusterUnavailable, createPostgresCluster } from './postgres-cluster'
import { skipPostgresTests } from './postgres'

const skip = skipPostgresTests || (clusterUnavailable !== null && process.env.CI !== 'true')

/** What a query gets: its rows, or the storage failure it met (anything else is thrown). */
async function outcome(query: Promise<unknown>): Promise<unknown> {
  try {
    return await query
  } catch (error) {
    const failure = storageUnavailable((error as { cause?: unknown }).cause ?? error)
    if (!failure) throw error
    return failure.reason
  }
}

describe.skipIf(skip)('a throwaway PostgreSQL cluster (PostgreSQL only)', () => {
  test('on PostgreSQL, it answers on its own port, keeps its data across a restart, refuses connections while stopped, and is gone after dispose', async () => {
    let port: number
    let dir: string
    {
      await using cluster = await createPostgresCluster()
      port = cluster.port
      dir = cluster.dir
      expect(port).not.toBe(5432)
      const sql = postgres(cluster.url, { max: 1, onnotice: () => {} })
      try {
        await sql`CREATE TABLE kept (n int)`
        await sql`INSERT INTO kept VALUES (1)`
        const [{ pid }] = (await sql`SELECT pg_backend_pid() AS pid`) as unknown as [{ pid: number }]

        await cluster.restart()
        // The pool's connection died with the old server: a query may meet that once, as a storage
        // failure, before the pool reconnects by itself.
        const afterRestart = [await outcome(sql`SELECT n, pg_backend_pid() AS pid FROM kept`)]
        if (typeof afterRestart[0] === 'string') afterRestart.push(await outcome(sql`SELECT n, pg_backend_pid() AS pid FROM kept`))
        for (const failed of afterRestart.slice(0, -1)) expect(failed).toMatch(/^the database server /)
        const [row] = afterRestart.at(-1) as [{ n: number; pid: number }]
        expect(row.n).toBe(1)
        expect(row.pid).not.toBe(pid)

        await cluster.stop()
        expect(await outcome(sql`SELECT 1`)).toMatch(/^the database server /)
        await cluster.start()
        let back = await outcome(sql`SELECT n FROM kept`)
        if (typeof back === 'string') back = await outcome(sql`SELECT n FROM kept`)
        expect(back).toEqual([{ n: 1 }])
      } finally {
        await sql.end({ timeout: 1 })
      }
    }
    const refused = postgres(`postgres://postgres@127.0.0.1:${port}/postgres`, { max: 1, onnotice: () => {} })
    try {
      expect(await outcome(refused`SELECT 1`)).toBe('the database server cannot be reached')
    } finally {
      await refused.end({ timeout: 1 })
    }
    expect(existsSync(dir)).toBe(false)
  }, 60_000)

  test('on PostgreSQL, a server node recovers without a restart once its database is back: the probe says unavailable while stopped', async () => {
    await using cluster = await createPostgresCluster()
    const handle = await openPostgres(cluster.url, { poolSize: 2 })
    try {
      const storage = postgresStorage(handle)
      observePostgres(handle, storage.observer)
      await storage.probe()
      await cluster.stop()
      // A request meets the stop: its failure, observed, makes the next probe run afresh.
      expect(await outcome(handle.db.execute(drizzleSql`SELECT 1`))).toMatch(/^the database server /)
      const error = await storage.probe().then(() => null, (e: unknown) => e)
      expect(error).toBeInstanceOf(StorageUnavailable)
      expect((error as StorageUnavailable).reason).toMatch(/^the database server /)
      await cluster.start()
      let probed = await storage.probe().then(() => 'ready', (e: StorageUnavailable) => e.reason)
      if (probed !== 'ready') probed = await storage.probe().then(() => 'ready', (e: StorageUnavailable) => e.reason)
      expect(probed).toBe('ready')
    } finally {
      await handle.close()
    }
  }, 60_000)
})
