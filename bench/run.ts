/**
 * bun run bench [--quick]
 *
 * Measures Pneumatic against baselines in the same run, as ratios (the machine is shared and
 * noisy): each scenario alternates the order A B, B A … over several rounds, with the server on one
 * core and this load generator on the other when taskset is available. Prints a table and writes
 * bench/results.json. Talks only to 127.0.0.1; every loop is bounded in time.
 *
 * Scenarios so far (issue 6 lists more): durable sends over POST /messages vs raw bun:sqlite with
 * one insert per transaction and the same pragmas; HTTP GET /health and a 50-message history page
 * vs a bare Bun.serve returning the same bytes.
 */
import { cpus } from 'node:os'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { logsOf, startServer, type ServerProcess } from '../tests/support/process'

const quick = process.argv.includes('--quick')
const SECONDS = quick ? 2 : 6
const ROUNDS = quick ? 2 : 4 // A B, B A, …
const SENDERS = 64
const HTTP_CONCURRENCY = 32

const canPin = Bun.which('taskset') !== null && cpus().length >= 2
if (canPin) Bun.spawnSync(['taskset', '-cp', '0', String(process.pid)])
const onServerCore = canPin ? ['taskset', '-c', '1'] : []
const BASELINES = join(import.meta.dir, 'baselines')

const cpuSeconds = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100 // utime + stime, in clock ticks of 1/100 s
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** Runs `worker` on `concurrency` loops until the time is up; returns completed operations per second. */
async function rate(concurrency: number, worker: () => Promise<boolean>): Promise<number> {
  const until = performance.now() + SECONDS * 1000
  let done = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) if (await worker()) done++
    }),
  )
  return done / SECONDS
}

type Side = { name: string; measure: () => Promise<number>; pid: () => number | undefined }
type Result = { scenario: string; unit: string; pneumatic: Stats; baseline: Stats & { name: string }; ratio: number; target: string; met: boolean | null }
type Stats = { median: number; min: number; max: number; cpuSeconds: number }

async function compare(scenario: string, unit: string, a: Side, b: Side, target: string, met: (pn: number, ratio: number) => boolean | null): Promise<Result> {
  const runs: Record<'a' | 'b', number[]> = { a: [], b: [] }
  const cpu: Record<'a' | 'b', number> = { a: 0, b: 0 }
  for (let round = 0; round < ROUNDS; round++) {
    for (const key of round % 2 === 0 ? (['a', 'b'] as const) : (['b', 'a'] as const)) {
      const side = key === 'a' ? a : b
      const pid = side.pid()
      const before = pid ? cpuSeconds(pid) : 0
      runs[key].push(await side.measure())
      const after = side.pid()
      cpu[key] += after ? cpuSeconds(after) - (pid === after ? before : 0) : 0
    }
  }
  const stats = (key: 'a' | 'b'): Stats => ({ median: median(runs[key]), min: Math.min(...runs[key]), max: Math.max(...runs[key]), cpuSeconds: +cpu[key].toFixed(2) })
  const ratio = median(runs.a) / median(runs.b)
  return { scenario, unit, pneumatic: stats('a'), baseline: { name: b.name, ...stats('b') }, ratio, target, met: met(median(runs.a), ratio) }
}

async function spawnBaseline(script: string, env: Record<string, string> = {}) {
  const child = Bun.spawn([...onServerCore, process.execPath, join(BASELINES, script)], { env: { ...process.env, ...env }, stdout: 'pipe', stderr: 'inherit' })
  const ready = await logsOf(child.stdout).waitFor(() => true)
  return { child, url: ready.url as string }
}

const dir = mkdtempSync(join(tmpdir(), 'pneumatic-bench-'))
let server: ServerProcess | undefined
const results: Result[] = []
try {
  server = await startServer(
    {
      DATABASE_URL: `sqlite:${join(dir, 'bench.db')}`,
      JWT_SECRET: 'bench-secret-of-at-least-thirty-two-chars',
      RATE_LIMIT_PER_MINUTE: '0',
      RATE_LIMIT_PER_HOUR: '0',
      AUTH_RATE_LIMIT_PER_MINUTE: '0',
      WS_FRAME_LIMIT_PER_MINUTE: '0',
    },
    onServerCore,
  )
  const base = server.base
  const json = async (path: string, token?: string, body?: unknown) =>
    (await fetch(base + path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    })).json() as Promise<any>
  for (const username of ['bench_a', 'bench_b']) await json('/auth/signup', undefined, { username, password: 'bench-password' })
  const { access_token: token } = await json('/auth/login', undefined, { username: 'bench_a', password: 'bench-password' })
  const other = (await json('/users', token)).users[0].id
  const { id: room } = await json('/conversations', token, { title: 'bench', member_ids: [other] })
  for (let i = 0; i < 60; i++) await json('/messages', token, { message_id: `seed-${i}`, conversation_id: room, content: `seed message ${i}` })
  const historyPath = `/conversations/${room}/messages?limit=50`
  const historyBody = await (await fetch(base + historyPath, { headers: { authorization: `Bearer ${token}` } })).text()
  const pneumaticPid = () => server!.process.pid
  console.log(`machine: ${cpus()[0]?.model} × ${cpus().length}, Bun ${Bun.version}, ${canPin ? 'server pinned to core 1, load on core 0' : 'no pinning'}; ${quick ? 'quick' : 'full'} run, ${ROUNDS} rounds × ${SECONDS} s`)

  // 1. Durable sends: 64 concurrent senders, each message acknowledged after commit.
  let n = 0
  results.push(
    await compare(
      'durable sends (64 senders, POST /messages)',
      'messages/s',
      {
        name: 'pneumatic',
        pid: pneumaticPid,
        measure: () =>
          rate(SENDERS, async () => {
            const reply = await fetch(base + '/messages', {
              method: 'POST',
              headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
              body: JSON.stringify({ message_id: `bench-${++n}`, conversation_id: room, content: 'hello' }),
            })
            await reply.arrayBuffer()
            return reply.status === 201
          }),
      },
      {
        name: 'raw bun:sqlite, 1 insert per transaction',
        pid: () => undefined,
        measure: async () => {
          const child = Bun.spawn([...onServerCore, process.execPath, join(BASELINES, 'sqlite-inserts.ts')], { env: { ...process.env, SECONDS: String(SECONDS) }, stdout: 'pipe' })
          const { count } = JSON.parse(await new Response(child.stdout).text())
          return count / SECONDS
        },
      },
      '≥ 10,000 msg/s and ≥ 5× raw',
      (pn, ratio) => pn >= 10_000 && ratio >= 5,
    ),
  )

  // 2. HTTP: the same bytes from a bare Bun.serve.
  const bare = await spawnBaseline('bare-http.ts', { HISTORY_BODY: historyBody })
  try {
    const get = (url: string, headers: Record<string, string> = {}) => async () => {
      const reply = await fetch(url, { headers })
      await reply.arrayBuffer()
      return reply.ok
    }
    const bareSide = (path: string): Side => ({ name: 'bare Bun.serve', pid: () => bare.child.pid, measure: () => rate(HTTP_CONCURRENCY, get(bare.url + path)) })
    results.push(
      await compare('GET /health', 'requests/s', { name: 'pneumatic', pid: pneumaticPid, measure: () => rate(HTTP_CONCURRENCY, get(base + '/health')) }, bareSide('/health'), '≥ 0.8×', (_, r) => r >= 0.8),
    )
    results.push(
      await compare(
        'GET history (limit=50)',
        'requests/s',
        { name: 'pneumatic', pid: pneumaticPid, measure: () => rate(HTTP_CONCURRENCY, get(base + historyPath, { authorization: `Bearer ${token}` })) },
        bareSide('/history'),
        '≥ 0.8×',
        (_, r) => r >= 0.8,
      ),
    )
  } finally {
    bare.child.kill()
  }
} finally {
  server?.process.kill('SIGTERM')
  await server?.process.exited
  rmSync(dir, { recursive: true, force: true })
}

const fmt = (x: number) => Math.round(x).toLocaleString('en-US')
console.log('\n| scenario | Pneumatic median (min–max) | baseline | baseline median | ratio | target | met |')
console.log('| --- | --- | --- | --- | --- | --- | --- |')
for (const r of results) {
  console.log(
    `| ${r.scenario} | ${fmt(r.pneumatic.median)} ${r.unit} (${fmt(r.pneumatic.min)}–${fmt(r.pneumatic.max)}) | ${r.baseline.name} | ${fmt(r.baseline.median)} | ${r.ratio.toFixed(2)}× | ${r.target} | ${r.met ? 'yes' : 'no'} |`,
  )
}
const machine = { cpu: cpus()[0]?.model, cores: cpus().length, bun: Bun.version, pinned: canPin }
writeFileSync(join(import.meta.dir, 'results.json'), JSON.stringify({ date: new Date().toISOString(), quick, seconds: SECONDS, rounds: ROUNDS, machine, results }, null, 2) + '\n')
console.log('\nwrote bench/results.json')
