/**
 * bun run bench [--quick] [--only=durable,http,fan-out,latency,memory,data size,lists,postgres,cluster]
 *
 * Measures Pneumatic against baselines in the same run, as ratios (the machine is shared and
 * noisy): each scenario alternates the order A B, B A … over several rounds, with the servers on
 * one core and this load generator on the other when taskset is available. Prints a table and
 * writes bench/results.json. Talks only to 127.0.0.1; every loop is bounded in count and time.
 * --quick runs shorter rounds, 2,000 sockets for memory, 100,000 messages for data size and
 * 1,000 groups for conversation lists.
 * Fixtures (users, conversations, the million messages) are written straight into the database
 * by bench/fixtures.ts, in the run's temporary directory, removed at the end. The PostgreSQL rows
 * run on databases the run creates on the machine's PostgreSQL (127.0.0.1:5432) and drops at the
 * end, their fixture made through the API; when nothing answers there they are skipped, with a
 * warning.
 *
 * The scenarios of issue 6, each in bench/scenarios/ with how it is measured:
 *   durable.ts    64 concurrent senders over POST /messages and over WebSocket vs raw bun:sqlite
 *   http.ts       GET /health and a history page vs a bare Bun.serve returning the same bytes
 *   fanout.ts     32 clients in one conversation; 1,000 in 100 conversations vs a bare pub/sub server
 *   latency.ts    open loop at 25/50/75% of a probed max rate: p50 and p99 send→receive
 *   memory.ts     RSS per idle authenticated WebSocket at 10,000 sockets vs the bare server
 *   data-size.ts  history page p99 with 1,000,000 messages vs 1,000
 * And of the "Hardening II" issue:
 *   conversations.ts  GET /conversations p99 in 10,000 groups of 500 members vs in 10
 * And of issue 15 (storage):
 *   postgres.ts   durable sends (as durable.ts) and a history page with DATABASE_URL=postgres://…,
 *                 vs raw postgres.js: one insert and counter update per transaction; the same query
 * And of issue 16 (cluster):
 *   cluster.ts    two nodes on one PostgreSQL and one Redis vs one node: durable sends, cross-node
 *                 fan-out, send→receive latency across nodes (its own databases and redis-servers)
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { chatFixture, login, type ChatContext } from './fixtures'
import { canPin, machine, pinLoadGenerator, printTable, quick, removeDir, ROUNDS, SECONDS, serverLogReport, startPneumatic, temporaryDir, warnings, type Result } from './lib'
import { conversationLists } from './scenarios/conversations'
import { dataSize } from './scenarios/data-size'
import { durableSends } from './scenarios/durable'
import { fanOut } from './scenarios/fanout'
import { httpRequests } from './scenarios/http'
import { latency } from './scenarios/latency'
import { memory } from './scenarios/memory'
import { clusterRows } from './scenarios/cluster'
import { postgresRows } from './scenarios/postgres'

pinLoadGenerator()
const started = performance.now()
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)} s`
console.log(
  `machine: ${machine.cpu} × ${machine.cores}, Bun ${machine.bun}, ${canPin ? 'servers pinned to core 1, load on core 0' : 'no pinning'}; ${quick ? 'quick' : 'full'} run, ${ROUNDS} rounds × ${SECONDS} s`,
)

const results: Result[] = []
// --only=durable,memory runs just those scenarios (while working on one); the default is all.
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',')
const wanted = (name: string) => !only || only.some((o) => name.toLowerCase().includes(o.toLowerCase()))
const step = async (name: string, run: () => Promise<Result[]>) => {
  if (!wanted(name)) return
  console.log(`[${elapsed()}] ${name}`)
  results.push(...(await run()))
}

const dir = temporaryDir('pneumatic-bench-')
try {
  // The chat fixture and its server only when a scenario on them runs (not for --only=postgres, say).
  if (['durable sends', 'HTTP', 'fan-out', 'latency', 'memory'].some(wanted)) {
    const database = join(dir, 'bench.db')
    const fixture = await chatFixture(dir, database)
    const server = await startPneumatic(dir, database)
    let tokens: string[]
    try {
      tokens = await login(server.base, fixture.users.map((u) => u.username))
      const ctx: ChatContext = { dir, server, fixture, tokens }
      await step('durable sends', () => durableSends(ctx))
      await step('HTTP', () => httpRequests(ctx))
      await step('fan-out', () => fanOut(ctx))
      await step('latency', () => latency(ctx))
    } finally {
      await server.stop()
    }
    await step('memory', () => memory(dir, database, tokens))
  }
  await step('data size', () => dataSize(dir))
  await step('conversation lists', () => conversationLists(dir))
  await step('postgres', () => postgresRows(dir))
  await step('cluster', () => clusterRows(dir))
} finally {
  const logs = serverLogReport()
  if (logs.error || logs.fatal || logs.stderr.length) warnings.push(`server logs: ${logs.error} error and ${logs.fatal} fatal lines; stderr: ${logs.stderr.join(' | ').slice(0, 500) || 'none'}`)
  if (logs.samples.length) console.log(`server log warnings/errors (${logs.warn} warn, ${logs.error} error, ${logs.fatal} fatal), first ones:\n  ${logs.samples.join('\n  ')}`)
  removeDir(dir)
}

printTable(results)
if (warnings.length) console.log(`\nwarnings:\n- ${warnings.join('\n- ')}`)
writeFileSync(
  join(import.meta.dir, 'results.json'),
  JSON.stringify({ date: new Date().toISOString(), quick, seconds: SECONDS, rounds: ROUNDS, machine, durationSeconds: Math.round((performance.now() - started) / 1000), results, warnings }, null, 2) + '\n',
)
console.log(`\nwrote bench/results.json (${elapsed()})`)
