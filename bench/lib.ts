/**
 * What every scenario of `bun run bench` shares: the run's length, core pinning, the A B / B A
 * comparison, closed-loop rates, latency histograms, and starting (and always stopping) the
 * server processes it measures.
 */
import { cpus, tmpdir } from 'node:os'
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import * as hdr from 'hdr-histogram-js'

export const quick = process.argv.includes('--quick')
/** How long one side of one round runs, for throughput and latency scenarios. */
export const SECONDS = quick ? 0.75 : 4
export const ROUNDS = quick ? 2 : 4 // A B, B A, …
export const BASELINES = join(import.meta.dir, 'baselines')
const MAIN = join(import.meta.dir, '..', 'src', 'main.ts')

// ---------------------------------------------------------------------------------------------
// Pinning and process accounting

export const canPin = Bun.which('taskset') !== null && cpus().length >= 2
/** The load generator (this process) runs on core 0; every server and baseline on core 1. */
export function pinLoadGenerator(): void {
  if (canPin) Bun.spawnSync(['taskset', '-cp', '0', String(process.pid)])
}
export const onServerCore = canPin ? ['taskset', '-c', '1'] : []

export const machine = { cpu: cpus()[0]?.model, cores: cpus().length, bun: Bun.version, pinned: canPin }

export const cpuSeconds = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100 // utime + stime, in clock ticks of 1/100 s
}
/** Resident memory of a process, in bytes (VmRSS). */
export const rssBytes = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** Every child this run started and every temporary directory, so that even a crash or ^C leaves none behind. */
const children = new Set<Bun.Subprocess>()
const temporaryDirs = new Set<string>()
export function temporaryDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  temporaryDirs.add(dir)
  return dir
}
export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
  temporaryDirs.delete(dir)
}
export function track<T extends Bun.Subprocess>(child: T): T {
  children.add(child)
  child.exited.then(() => children.delete(child))
  return child
}
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL')
  for (const dir of temporaryDirs) rmSync(dir, { recursive: true, force: true })
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130))

/** Stops a child: `signal` first, SIGKILL if it is still running after `graceMs`. */
export async function stop(child: Bun.Subprocess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill(signal)
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await child.exited
  clearTimeout(timer)
}

// ---------------------------------------------------------------------------------------------
// Measuring

/** Runs `worker` on `concurrency` loops (told which one it is) until the time is up; returns completed operations per second. */
export async function rate(concurrency: number, worker: (loop: number) => Promise<boolean>, seconds = SECONDS): Promise<number> {
  const until = performance.now() + seconds * 1000
  let done = 0
  await Promise.all(
    Array.from({ length: concurrency }, async (_, loop) => {
      while (performance.now() < until) if (await worker(loop)) done++
    }),
  )
  return done / seconds
}

/**
 * One side of a comparison; measure() returns one number per metric (one metric: a number).
 * Its CPU seconds are pid()'s, or the sum over pids() when the side is several processes (the
 * nodes of a cluster and their Redis).
 */
export type Side<M = number> = { name: string; measure: () => Promise<M>; pid: () => number | undefined; pids?: () => number[] }
export type Stats = { median: number; min: number; max: number; cpuSeconds: number }
export type Result = {
  scenario: string
  unit: string
  pneumatic: Stats
  baseline: Stats & { name: string }
  ratio: number
  target: string
  met: boolean | null
  note?: string
}
/** How to report one metric of a compareMany(): its row's name, unit and target. */
export type Row = { scenario: string; unit: string; target: string; met: (pn: number, ratio: number) => boolean | null; note?: string }

/**
 * Measures A and B alternately, A B, B A, … for ROUNDS rounds, and reports each metric as a row:
 * medians, min–max, CPU seconds each process used, and the ratio of the medians (A / B).
 */
export async function compareMany<K extends string>(rows: Record<K, Row>, a: Side<Record<K, number>>, b: Side<Record<K, number>>, rounds = ROUNDS): Promise<Result[]> {
  const keys = Object.keys(rows) as K[]
  const runs = { a: [] as Record<K, number>[], b: [] as Record<K, number>[] }
  const cpu = { a: 0, b: 0 }
  for (let round = 0; round < rounds; round++) {
    for (const key of round % 2 === 0 ? (['a', 'b'] as const) : (['b', 'a'] as const)) {
      const side = key === 'a' ? a : b
      if (side.pids) {
        const pids = side.pids()
        const before = pids.map(cpuSeconds)
        runs[key].push(await side.measure())
        cpu[key] += pids.reduce((sum, pid, i) => sum + cpuSeconds(pid) - before[i]!, 0)
        continue
      }
      const pid = side.pid()
      const before = pid ? cpuSeconds(pid) : 0
      runs[key].push(await side.measure())
      const after = side.pid()
      // A side that starts a fresh process each round reports it only afterwards (and it is gone).
      cpu[key] += after && existsProc(after) ? cpuSeconds(after) - (pid === after ? before : 0) : 0
    }
  }
  return keys.map((metric) => {
    const stats = (key: 'a' | 'b'): Stats => {
      const xs = runs[key].map((r) => r[metric])
      return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), cpuSeconds: +cpu[key].toFixed(2) }
    }
    const pn = stats('a')
    const base = stats('b')
    const ratio = pn.median / base.median
    const row = rows[metric]
    return { scenario: row.scenario, unit: row.unit, pneumatic: pn, baseline: { name: b.name, ...base }, ratio, target: row.target, met: row.met(pn.median, ratio), ...(row.note ? { note: row.note } : {}) }
  })
}

const existsProc = (pid: number) => {
  try {
    readFileSync(`/proc/${pid}/stat`)
    return true
  } catch {
    return false
  }
}

/** compareMany() for a single number. */
export async function compare(scenario: string, unit: string, a: Side, b: Side, target: string, met: Row['met'], note?: string): Promise<Result> {
  const one = (side: Side): Side<{ value: number }> => ({ ...side, measure: async () => ({ value: await side.measure() }) })
  const [result] = await compareMany({ value: { scenario, unit, target, met, note } }, one(a), one(b))
  return result!
}

/** A latency histogram in microseconds, 3 significant digits, up to 2 minutes. */
export const histogram = () => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 })
export type Histogram = ReturnType<typeof histogram>

// ---------------------------------------------------------------------------------------------
// Processes under test

export type Pneumatic = { base: string; ws: string; process: Bun.Subprocess; logFile: string; stop(): Promise<void> }

/**
 * Rate limits off (one client sends everything), an idle timeout longer than any run, and room
 * for the memory scenario's 100 sockets per user (10,000 sockets of 100 users).
 */
export const BENCH_ENV = {
  JWT_SECRET: 'bench-secret-of-at-least-thirty-two-chars',
  RATE_LIMIT_PER_MINUTE: '0',
  RATE_LIMIT_PER_HOUR: '0',
  LOGIN_FAILURE_LIMIT_PER_IP: '0',
  LOGIN_FAILURE_LIMIT_PER_USERNAME: '0',
  SIGNUP_LIMIT_PER_IP: '0',
  WS_FRAME_LIMIT_PER_MINUTE: '0',
  WS_IDLE_TIMEOUT_SECONDS: '960',
  WS_MAX_SOCKETS_PER_USER: '1000',
}

/**
 * `bun src/main.ts` on a free port of 127.0.0.1, on the server core. Its logs go to a file rather
 * than a pipe: at info level it writes a line per request and per socket, and parsing those here
 * would cost the load generator's core. serverLogReport() reads the warnings and errors afterwards.
 */
export async function startPneumatic(dir: string, database: string, env: Record<string, string> = {}, name = 'pneumatic'): Promise<Pneumatic> {
  const logFile = join(dir, `${name}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}.log`)
  const child = track(
    // BENCH_PROFILE=<dir>: each Pneumatic server writes a CPU profile there when it stops.
    Bun.spawn([...onServerCore, process.execPath, ...(process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : []), MAIN], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', DATABASE_URL: `sqlite:${database}`, ...BENCH_ENV, ...env },
      stdin: 'ignore',
      stdout: Bun.file(logFile),
      stderr: Bun.file(`${logFile}.stderr`),
    }),
  )
  logFiles.push(logFile)
  const listening = await waitForLine(logFile, child, (line) => line.includes('"pneumatic listening"'))
  const base = (JSON.parse(listening).url as string).replace('0.0.0.0', '127.0.0.1')
  return { base, ws: base.replace('http', 'ws') + '/ws', process: child, logFile, stop: () => stop(child) }
}

/** Polls a log file until a line matches (a file, not a pipe: see startPneumatic). */
async function waitForLine(file: string, child: Bun.Subprocess, match: (line: string) => boolean, timeoutMs = 20_000): Promise<string> {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    const line = headOf(file)
      .split('\n')
      .find((l) => match(l))
    if (line) return line
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}) before listening: ${headOf(`${file}.stderr`)}`)
    await Bun.sleep(20)
  }
  child.kill('SIGKILL')
  throw new Error(`server not listening within ${timeoutMs / 1000} s: ${headOf(file)}`)
}

function headOf(file: string, bytes = 64 * 1024): string {
  try {
    const fd = openSync(file, 'r')
    const buffer = Buffer.alloc(bytes)
    const n = readSync(fd, buffer, 0, bytes, 0)
    closeSync(fd)
    return buffer.subarray(0, n).toString('utf8')
  } catch {
    return ''
  }
}

const logFiles: string[] = []

/** Warnings, errors and stderr output of every Pneumatic this run started: counts and a few samples. */
export function serverLogReport(): { warn: number; error: number; fatal: number; stderr: string[]; samples: string[] } {
  const report = { warn: 0, error: 0, fatal: 0, stderr: [] as string[], samples: [] as string[] }
  for (const file of logFiles) {
    const grep = Bun.spawnSync(['grep', '-E', '"level":"(warn|error|fatal)"', file], { stdout: 'pipe' })
    for (const line of grep.stdout.toString().split('\n')) {
      const level = /"level":"(warn|error|fatal)"/.exec(line)?.[1] as 'warn' | 'error' | 'fatal' | undefined
      if (!level) continue
      report[level]++
      if (report.samples.length < 5) report.samples.push(line.slice(0, 400))
    }
    const stderr = headOf(`${file}.stderr`, 4096).trim()
    if (stderr) report.stderr.push(stderr)
  }
  return report
}

/** A baseline script from bench/baselines on the server core, once it prints its JSON ready line. */
export async function spawnBaseline(script: string, env: Record<string, string> = {}) {
  const child = track(Bun.spawn([...onServerCore, process.execPath, join(BASELINES, script)], { env: { ...process.env, ...env }, stdout: 'pipe', stderr: 'inherit' }))
  const reader = child.stdout.getReader()
  let text = ''
  while (!text.includes('\n')) {
    const { value, done } = await reader.read()
    if (done) throw new Error(`${script} exited before it was ready`)
    text += new TextDecoder().decode(value)
  }
  reader.releaseLock()
  const ready = JSON.parse(text.slice(0, text.indexOf('\n')))
  return { child, url: ready.url as string }
}

// ---------------------------------------------------------------------------------------------
// Clients

/** JSON over HTTP; throws on an error status. */
export async function api(base: string, path: string, token?: string, body?: unknown): Promise<any> {
  const reply = await fetch(base + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  if (reply.status >= 400) throw new Error(`${path}: ${reply.status} ${await reply.text()}`)
  return reply.json()
}

/** Runs `work` over `items` with at most `parallel` at once. */
export async function inParallel<T, R>(items: T[], parallel: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(parallel, items.length) }, async () => {
      while (next < items.length) {
        const i = next++
        results[i] = await work(items[i]!, i)
      }
    }),
  )
  return results
}

/** A WebSocket once the server has said {"type":"ready"}: Pneumatic does, and so does the bare chat baseline. */
export function openSocket(url: string, timeoutMs = 15_000): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    const timer = setTimeout(() => (ws.close(), reject(new Error('socket not ready in time'))), timeoutMs)
    ws.onmessage = (event) => {
      if (!String(event.data).startsWith('{"type":"ready"')) return
      clearTimeout(timer)
      ws.onmessage = null
      ws.onerror = null
      resolve(ws)
    }
    ws.onerror = () => (clearTimeout(timer), reject(new Error(`socket error while connecting to ${url.replace(/token=[^&]+/, 'token=…')}`)))
  })
}

export const openSockets = (urls: string[], parallel = 200) => inParallel(urls, parallel, (url) => openSocket(url))

/** Closes sockets and waits (bounded) until they are closed, so the next scenario starts clean. */
export async function closeSockets(sockets: WebSocket[], timeoutMs = 10_000): Promise<void> {
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve()
          const timer = setTimeout(resolve, timeoutMs)
          ws.onclose = () => (clearTimeout(timer), resolve())
          ws.close()
        }),
    ),
  )
}

// ---------------------------------------------------------------------------------------------
// Output

/** Things that went wrong in a measurement without stopping it (error frames, closed sockets): printed and saved. */
export const warnings: string[] = []
export function warn(message: string): void {
  warnings.push(message)
  console.log(`  warning: ${message}`)
}

/** Whole numbers with thousands separators; small values with three significant digits. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x)
  if (Math.abs(x) >= 100) return Math.round(x).toLocaleString('en-US')
  return Number(x.toPrecision(3)).toString()
}

export function printTable(results: Result[]): void {
  console.log('\n| scenario | Pneumatic median (min–max) | baseline | baseline median | ratio | target | met |')
  console.log('| --- | --- | --- | --- | --- | --- | --- |')
  for (const r of results) {
    const met = r.met === null ? '—' : r.met ? 'yes' : 'no'
    console.log(
      `| ${r.scenario} | ${fmt(r.pneumatic.median)} ${r.unit} (${fmt(r.pneumatic.min)}–${fmt(r.pneumatic.max)}) | ${r.baseline.name} | ${fmt(r.baseline.median)} | ${r.ratio.toFixed(2)}× | ${r.target} | ${met} |`,
    )
  }
}
