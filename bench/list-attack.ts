/**
 * bun bench/list-attack.ts [--groups=1000] [--members=500]
 *
 * The adversarial review's attack on conversation lists (the "Hardening II" issue, item 1),
 * reproduced against a real server process: one account creates `groups` groups of `members`
 * members each through POST /conversations, as any account may, then lists its conversations.
 * Not part of `bun run bench`: it reports absolute figures for a before/after comparison of two
 * checkouts on the same machine, and talks to the API only (users are written straight into the
 * database, whose users table every release shares), so the same file runs against an older
 * checkout: copy it there and run it. Talks only to 127.0.0.1.
 *
 * Reports, for GET /conversations as the attacker sends it (and with limit=200, where the server
 * knows the parameter), and for the web UI's page at `/`:
 * - the response's size, and the server's own duration of the request (its log line), median of 5;
 * - /health's worst latency while 10 lists run at once, probed one request after another;
 * - the server's peak RSS while 30 lists run at once.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Database } from 'bun:sqlite'
import { login, migrate, PASSWORD } from './fixtures'
import { api, inParallel, pinLoadGenerator, removeDir, rssBytes, startPneumatic, temporaryDir, type Pneumatic } from './lib'

const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback)
const GROUPS = arg('groups', 1000)
const MEMBERS = arg('members', 500)

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MiB`
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** The server's logged duration_ms of its latest request to `route` with status 200. */
function loggedDuration(server: Pneumatic, route: string, after: number): number {
  const lines = readFileSync(server.logFile, 'utf8').split('\n').slice(after)
  const line = lines.reverse().find((l) => l.includes('"msg":"request"') && l.includes(`"route":"${route}"`) && l.includes('"status":200'))
  if (!line) throw new Error(`no request line for ${route}`)
  return JSON.parse(line).duration_ms as number
}
const logLength = (server: Pneumatic) => readFileSync(server.logFile, 'utf8').split('\n').length

async function sizeAndDuration(server: Pneumatic, path: string, route: string, headers: Record<string, string>) {
  const sizes: number[] = []
  const durations: number[] = []
  for (let i = 0; i < 5; i++) {
    const mark = logLength(server) - 1
    const reply = await fetch(server.base + path, { headers })
    const body = await reply.arrayBuffer()
    if (reply.status !== 200) throw new Error(`${path}: ${reply.status}`)
    sizes.push(body.byteLength)
    // The log line is written once the response is ready; give it a moment to reach the file.
    for (let tries = 0; ; tries++) {
      try {
        durations.push(loggedDuration(server, route, mark))
        break
      } catch (error) {
        if (tries > 50) throw error
        await Bun.sleep(10)
      }
    }
  }
  return { bytes: median(sizes), durationMs: median(durations) }
}

/** /health's worst latency, probed back to back, while `lists` requests of `path` run at once. */
async function healthUnderLoad(server: Pneumatic, path: string, headers: Record<string, string>, lists: number) {
  let running = true
  let worst = 0
  const probe = (async () => {
    while (running) {
      const started = performance.now()
      await (await fetch(server.base + '/health')).arrayBuffer()
      worst = Math.max(worst, performance.now() - started)
    }
  })()
  const started = performance.now()
  await Promise.all(Array.from({ length: lists }, async () => (await fetch(server.base + path, { headers })).arrayBuffer()))
  const allDone = performance.now() - started
  running = false
  await probe
  return { worstHealthMs: worst, allListsMs: allDone }
}

/** The server's peak RSS while `lists` requests of `path` run at once, sampled every 5 ms. */
async function peakRss(server: Pneumatic, path: string, headers: Record<string, string>, lists: number) {
  const pid = server.process.pid
  const before = rssBytes(pid)
  let peak = before
  let running = true
  const sampler = (async () => {
    while (running) {
      peak = Math.max(peak, rssBytes(pid))
      await Bun.sleep(5)
    }
  })()
  await Promise.all(Array.from({ length: lists }, async () => (await fetch(server.base + path, { headers })).arrayBuffer()))
  running = false
  await sampler
  return { before, peak }
}

pinLoadGenerator()
const dir = temporaryDir('pneumatic-list-attack-')
try {
  const file = join(dir, 'attack.db')
  await migrate(dir, file)
  const hash = await Bun.password.hash(PASSWORD, { algorithm: 'argon2id', memoryCost: 8, timeCost: 1 })
  const db = new Database(file)
  const names = Array.from({ length: MEMBERS }, (_, i) => `attack_${i}`)
  const ids: string[] = []
  db.transaction(() => {
    const insert = db.prepare('INSERT INTO users (id, username, full_name, password_hash, created_at) VALUES (?, ?, NULL, ?, ?)')
    for (const name of names) {
      const id = Bun.randomUUIDv7()
      insert.run(id, name, hash, Date.now())
      ids.push(id)
    }
  })()
  db.close()

  const server = await startPneumatic(dir, file, {}, 'attack')
  try {
    const [token] = await login(server.base, [names[0]!])
    const auth = { authorization: `Bearer ${token}` }
    const created = performance.now()
    await inParallel(
      Array.from({ length: GROUPS }, (_, g) => g),
      4,
      (g) => api(server.base, '/conversations', token, { title: `group ${g}`, member_ids: ids.slice(1) }),
    )
    console.log(`${GROUPS} groups of ${MEMBERS} members created through the API in ${((performance.now() - created) / 1000).toFixed(1)} s`)

    // The web UI's session: log in through its form as a page of this server would.
    const form = await fetch(server.base + '/ui/login', {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
      body: new URLSearchParams({ username: names[0]!, password: PASSWORD }).toString(),
    })
    const cookie = form.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ')

    const targets: Array<[string, string, string, Record<string, string>]> = [
      ['GET /conversations', '/conversations', '/conversations', auth],
      ['GET /conversations?limit=200', '/conversations?limit=200', '/conversations', auth],
      ['GET / (web UI page)', '/', '/', { cookie }],
    ]
    for (const [label, path, route, headers] of targets) {
      const one = await sizeAndDuration(server, path, route, headers)
      const health = await healthUnderLoad(server, path, headers, 10)
      const rss = await peakRss(server, path, headers, 30)
      console.log(
        `${label}: ${mib(one.bytes)}, server duration ${one.durationMs.toFixed(1)} ms (median of 5); ` +
          `10 at once: /health worst ${health.worstHealthMs.toFixed(0)} ms, all 10 done in ${health.allListsMs.toFixed(0)} ms; ` +
          `30 at once: RSS ${mib(rss.before)} → peak ${mib(rss.peak)}`,
      )
    }
  } finally {
    await server.stop()
  }
} finally {
  removeDir(dir)
}
