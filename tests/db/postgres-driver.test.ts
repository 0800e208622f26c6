/**
 * The evidence for the PostgreSQL driver (postgres.js), kept in the suite: Bun.SQL has delivered
 * one query's rows to another under concurrency with prepared statements (oven-sh/bun 33665, 32772;
 * keeper.sh measured 500 wrong of 1,000). Every query here checks that it got its own rows, with
 * the shapes those reports needed: many concurrent prepared queries on a small pool, first uses of
 * new statements beside simple (parameterless) queries, failing statements in the stream, and
 * transactions interleaved with plain queries.
 */
import { describe, expect, test } from 'bun:test'
import postgres from 'postgres'
import { freshDatabase, skipPostgresTests } from '../support/postgres'

const payload = (id: number) => `row-${id};`.repeat(1 + (id % 37))

describe.skipIf(skipPostgresTests)('the PostgreSQL driver (PostgreSQL only)', () => {
  test('1,000 concurrent queries, ranges and transactions on a pool of 4 each get their own rows', async () => {
    await using db = await freshDatabase()
    const sql = postgres(db.url, { max: 4, onnotice: () => {} })
    try {
      await sql`CREATE TABLE rows (id int PRIMARY KEY, payload text NOT NULL)`
      await sql`CREATE TABLE tx_rows (tx int NOT NULL, n int NOT NULL)`
      await sql`INSERT INTO rows SELECT g, repeat('row-' || g || ';', 1 + g % 37) FROM generate_series(1, 1000) g`
      const wrong: string[] = []
      const one = Array.from({ length: 1000 }, (_, i) => i + 1).map(async (id) => {
        const rows = await sql`SELECT id, payload FROM rows WHERE id = ${id}`
        if (rows.length !== 1 || rows[0]!.id !== id || rows[0]!.payload !== payload(id)) wrong.push(`row ${id}`)
      })
      const ranges = Array.from({ length: 200 }, (_, i) => i * 5 + 1).map(async (from) => {
        const rows = await sql`SELECT id, payload FROM rows WHERE id BETWEEN ${from} AND ${from + 4} ORDER BY id`
        if (rows.length !== 5 || rows.some((r, k) => r.id !== from + k || r.payload !== payload(from + k))) wrong.push(`range ${from}`)
      })
      const transactions = Array.from({ length: 100 }, (_, t) =>
        sql.begin(async (tx) => {
          for (let n = 0; n < 3; n++) await tx`INSERT INTO tx_rows (tx, n) VALUES (${t}, ${n})`
          const [seen] = await tx`SELECT count(*)::int AS c, min(tx) AS lo, max(tx) AS hi FROM tx_rows WHERE tx = ${t}`
          if (seen!.c !== 3 || seen!.lo !== t || seen!.hi !== t) wrong.push(`transaction ${t}`)
        }),
      )
      await Promise.all([...one, ...ranges, ...transactions])
      expect(wrong).toEqual([])
      expect((await sql`SELECT count(*)::int AS c FROM tx_rows`)[0]!.c).toBe(300)
    } finally {
      await sql.end()
    }
  })

  test('on one connection, new statements, parameterless queries and failing inserts side by side each get their own answer', async () => {
    await using db = await freshDatabase()
    const sql = postgres(db.url, { max: 1, onnotice: () => {} })
    try {
      await sql`CREATE TABLE taken (k text PRIMARY KEY)`
      await sql`INSERT INTO taken VALUES ('taken')`
      const wrong: string[] = []
      const unexpected: string[] = []
      const jobs: Promise<void>[] = []
      for (let i = 0; i < 1000; i++) {
        const tag = `tag-${i}`
        const check = (rows: postgres.RowList<postgres.Row[]>) => {
          if (rows.length !== 1 || rows[0]!.v !== tag) wrong.push(`${i % 4}: ${tag}`)
        }
        switch (i % 4) {
          case 0: // no parameters: the simple query protocol
            jobs.push(sql.unsafe(`SELECT '${tag}'::text AS v`).then(check))
            break
          case 1: // a statement never seen before: its first Parse and Describe
            jobs.push(sql.unsafe(`SELECT $1::text AS v, ${i} AS novel_${i}`, [tag], { prepare: true }).then(check))
            break
          case 2: // a prepared statement used again and again
            jobs.push(sql`SELECT ${tag}::text AS v`.then(check))
            break
          case 3: // a failing statement in the stream
            jobs.push(
              sql`INSERT INTO taken VALUES ('taken')`.then(
                () => void wrong.push(`insert ${i} succeeded`),
                (error: Error) => void (/duplicate key/.test(error.message) || unexpected.push(error.message)),
              ),
            )
        }
      }
      await Promise.all(jobs)
      expect({ wrong, unexpected }).toEqual({ wrong: [], unexpected: [] })
    } finally {
      await sql.end()
    }
  })
})
