import { Database, type Statement } from 'bun:sqlite'
import { afterAll, beforeAll } from 'bun:test'

/**
 * Query plans of the statements the app really runs: every statement this process prepares records
 * its SQL and bound parameters each time it runs, so a test follows a service however it builds its
 * queries (query builder, prepared statement, raw SQL). Call recordStatements() at the top of a test
 * file; it patches bun:sqlite for that file's tests and restores it after them.
 */
type Executed = { sql: string; params: unknown[] }
const executed: Executed[] = []

function recordExecutions(statement: Statement<any, any>, sql: string) {
  for (const method of ['all', 'get', 'values', 'run', 'iterate'] as const) {
    const run = (statement as any)[method].bind(statement)
    ;(statement as any)[method] = (...params: unknown[]) => {
      executed.push({ sql, params })
      return run(...params)
    }
  }
  return statement
}

export function recordStatements(): void {
  const originals = { prepare: Database.prototype.prepare, query: Database.prototype.query }
  beforeAll(() => {
    Database.prototype.prepare = function (this: Database, sql: string, ...rest: unknown[]) {
      return recordExecutions((originals.prepare as any).call(this, sql, ...rest), sql)
    } as typeof Database.prototype.prepare
    const recorded = new WeakSet<object>() // query() hands out the same cached statement again
    Database.prototype.query = function (this: Database, sql: string) {
      const statement = originals.query.call(this, sql)
      if (recorded.has(statement)) return statement
      recorded.add(statement)
      return recordExecutions(statement, sql)
    } as typeof Database.prototype.query
  })
  afterAll(() => {
    Database.prototype.prepare = originals.prepare
    Database.prototype.query = originals.query
  })
}

export type Plan = { sql: string; plan: string[] }

/** The reads (SELECTs) that `run` made and that `reads` picks, each with its EXPLAIN QUERY PLAN details. */
export async function plansOf(sqlite: Database, run: () => Promise<unknown> | unknown, reads: (sql: string) => boolean): Promise<Plan[]> {
  executed.length = 0
  await run()
  return executed
    .filter((e) => /^\s*(select|with)\b/i.test(e.sql) && reads(e.sql))
    .map(({ sql, params }) => ({ sql, plan: explain(sqlite, sql, params) }))
}

export const explain = (sqlite: Database, sql: string, params: unknown[] = []): string[] =>
  (sqlite.query(`EXPLAIN QUERY PLAN ${sql}`).all(...(params as any[])) as { detail: string }[]).map((row) => row.detail)
