import type postgres from 'postgres'
import { operationOf, type QueryObserver } from '../client'
import type { PostgresHandle } from './connection'

/** The pending query postgres.js hands out: it settles through these two, which it looks up on each call. */
type Settling = { resolve(value: unknown): void; reject(error: unknown): void }

type Scope = Pick<postgres.Sql, 'unsafe'> & { savepoint?: postgres.TransactionSql['savepoint'] }

const observers = new WeakMap<object, QueryObserver[]>()

/**
 * Times every statement drizzle sends through this handle, and every transaction as a whole (its
 * BEGIN and COMMIT included: a commit waits for the WAL's flush, most of a write's cost), and tells
 * the observer about each failure. drizzle sends every statement through the client's unsafe(),
 * and each transaction through begin(), whose statements go through the transaction's own unsafe()
 * (and a savepoint's). The clock runs from when drizzle hands over the statement to when its rows
 * are in: waiting for a free connection of the pool counts, as the caller waits for it too.
 *
 * The handle is instrumented once, by its first observer; later observers join the same list
 * (metrics and tracing both observe), so each statement is timed once and told to all.
 */
export function observePostgres(handle: PostgresHandle, observer: QueryObserver): void {
  const client = handle.db.$client
  const observing = observers.get(client)
  if (observing) {
    observing.push(observer)
    return
  }
  const all = [observer]
  observers.set(client, all)

  const failed = (error: unknown) => {
    for (const o of all) o.failed?.(error)
  }

  /** Makes the statements of `scope` (the client, a transaction, a savepoint) report to every observer. */
  function instrument<S extends Scope>(scope: S): S {
    const unsafe = scope.unsafe
    scope.unsafe = ((query: string, ...rest: unknown[]) => {
      const pending = (unsafe as (...args: unknown[]) => unknown)(query, ...rest) as Settling
      const operation = operationOf(query)
      const start = performance.now()
      const { resolve, reject } = pending
      const done = () => {
        const seconds = (performance.now() - start) / 1000
        for (const o of all) o.statement(operation, seconds)
      }
      pending.resolve = (value) => {
        done()
        resolve(value)
      }
      pending.reject = (error) => {
        done()
        failed(error)
        reject(error)
      }
      return pending
    }) as unknown as S['unsafe']
    const savepoint = scope.savepoint
    if (savepoint) {
      scope.savepoint = ((name: unknown, fn?: (sql: postgres.TransactionSql) => unknown) => {
        if (typeof name === 'function') return savepoint((sql) => name(instrument(sql)))
        if (typeof fn === 'function') return savepoint(name as string, (sql) => fn(instrument(sql)))
        return (savepoint as (...args: unknown[]) => unknown)(name, fn) // the tagged-template form: one statement
      }) as typeof savepoint
    }
    return scope
  }

  instrument(client)
  const begin = client.begin
  client.begin = ((options: unknown, fn?: (sql: postgres.TransactionSql) => unknown) => {
    const body = (typeof options === 'function' ? options : fn) as (sql: postgres.TransactionSql) => unknown
    const mode = typeof options === 'string' ? options : ''
    const start = performance.now()
    const done = () => {
      const seconds = (performance.now() - start) / 1000
      for (const o of all) o.transaction(seconds)
    }
    return begin(mode, (sql) => body(instrument(sql))).then(
      (result) => {
        done()
        return result
      },
      (error: unknown) => {
        done()
        failed(error)
        throw error
      },
    )
  }) as typeof client.begin
}
