/**
 * Soak test (not part of the test suite): 5,000 WebSocket connections for SOAK_SECONDS (default
 * 120) with steady traffic across 500 conversations, against a real server process on 127.0.0.1
 * with the default configuration (every limit as shipped). Checks that every socket gets every
 * message of its user's conversations exactly once, that no error frame or unexpected close
 * happens, and samples the server's RSS before, during and after.
 *
 * The accounts and their sessions are made before the server starts, by the server's own code on
 * its database file: 250 logins from one address in a minute would be refused by the default
 * per-address request limit, as they should be. Everything after that goes through the server.
 *
 *   bun bench/soak.ts            (or: npx -y bun@1.4.5 run soak)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openSession } from '../src/auth/service'
import { createTokens } from '../src/auth/tokens'
import { loadConfig } from '../src/config'
import { openSqliteStore } from '../src/db/store.sqlite'
import * as userService from '../src/users/service'
import { startServer } from '../tests/support/process'

const USERS = 250
const CONVERSATIONS = 500
const MEMBERS = 4
const SOCKETS_PER_USER = 20 // 5,000 sockets, each user at the default WS_MAX_SOCKETS_PER_USER
const SECONDS = Number(process.env.SOAK_SECONDS ?? 120)
const MESSAGES_PER_SECOND = Number(process.env.SOAK_RATE ?? 40)

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024
const log = (...parts: unknown[]) => console.log(`[${new Date().toISOString().slice(11, 19)}]`, ...parts)

const dir = mkdtempSync(join(tmpdir(), 'pneumatic-soak-'))
// Only where the data lives and the signing secret (the sessions made below sign with it).
const env = { DATABASE_URL: `sqlite:${join(dir, 'soak.db')}`, JWT_SECRET: 'soak-test-secret-of-at-least-32-characters' }

log(`making ${USERS} accounts and a session each`)
const users: { id: string; token: string }[] = []
{
  const config = loadConfig(env)
  if (config.database.kind !== 'sqlite') throw new Error('the soak makes its accounts in SQLite')
  const store = openSqliteStore(config.database.path)
  const tokens = createTokens({ secret: env.JWT_SECRET, accessTtlSeconds: config.accessTokenTtlSeconds, refreshTtlSeconds: config.refreshTokenTtlSeconds })
  for (let i = 0; i < USERS; i++) {
    const { id } = await userService.create(store, { username: `soak_${i}`, fullName: null, passwordHash: 'no-login-needed' })
    users.push({ id, token: (await openSession({ store, tokens }, id)).access_token })
  }
  await store.close()
}

const server = await startServer(env)
const pid = server.process.pid
const api = async (path: string, token?: string, body?: unknown) => {
  const reply = await fetch(server.base + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  if (reply.status >= 400) throw new Error(`${path}: ${reply.status} ${await reply.text()}`)
  return reply.json() as Promise<any>
}

try {
  log(`server pid ${pid}; creating ${CONVERSATIONS} conversations of ${MEMBERS}`)
  const conversations: { id: string; members: number[] }[] = []
  for (let c = 0; c < CONVERSATIONS; c++) {
    const members = Array.from({ length: MEMBERS }, (_, k) => (c + k * 7) % USERS)
    const { id } = await api('/conversations', users[members[0]!]!.token, { title: `room ${c}`, member_ids: members.slice(1).map((m) => users[m]!.id) })
    conversations.push({ id, members })
  }

  log(`opening ${USERS * SOCKETS_PER_USER} sockets`)
  const received = new Map<WebSocket, Map<string, number>>() // socket → message id → times seen
  const socketsOf: WebSocket[][] = users.map(() => [])
  let errorFrames = 0
  let unexpectedCloses = 0
  let closing = false
  const wsUrl = server.base.replace('http', 'ws') + '/ws'
  for (let u = 0; u < USERS; u++) {
    await Promise.all(
      Array.from(
        { length: SOCKETS_PER_USER },
        () =>
          new Promise<void>((resolve, reject) => {
            const ws = new WebSocket(`${wsUrl}?token=${users[u]!.token}`)
            const seen = new Map<string, number>()
            received.set(ws, seen)
            socketsOf[u]!.push(ws)
            ws.onmessage = (event) => {
              const frame = JSON.parse(String(event.data))
              if (frame.type === 'ready') resolve()
              else if (frame.type === 'message') seen.set(frame.message.id, (seen.get(frame.message.id) ?? 0) + 1)
              else if (frame.type === 'error') errorFrames++
            }
            ws.onclose = () => {
              if (!closing) unexpectedCloses++
            }
            ws.onerror = () => reject(new Error('socket error while connecting'))
          }),
      ),
    )
  }
  const rssBefore = rssMiB(pid)
  log(`connected; server RSS ${rssBefore.toFixed(1)} MiB; sending ${MESSAGES_PER_SECOND}/s for ${SECONDS}s`)

  const sent: { id: string; conversation: number }[] = []
  const rssDuring: number[] = []
  const started = performance.now()
  let tick = 0
  while (performance.now() - started < SECONDS * 1000) {
    const batch = Array.from({ length: MESSAGES_PER_SECOND }, () => {
      const c = Math.floor(Math.random() * CONVERSATIONS)
      const sender = conversations[c]!.members[Math.floor(Math.random() * MEMBERS)]!
      return api('/messages', users[sender]!.token, { message_id: crypto.randomUUID(), conversation_id: conversations[c]!.id, content: `tick ${tick}` }).then((m) =>
        sent.push({ id: m.id, conversation: c }),
      )
    })
    await Promise.all([...batch, Bun.sleep(1000)]) // pacing for a steady rate, not synchronisation
    if (++tick % 10 === 0) {
      rssDuring.push(rssMiB(pid))
      log(`${tick}s: ${sent.length} sent, RSS ${rssDuring.at(-1)!.toFixed(1)} MiB`)
    }
  }

  // Everything sent has been acknowledged; give delivery a bounded moment to reach every socket.
  const expectedFor = (u: number) => sent.filter((m) => conversations[m.conversation]!.members.includes(u)).map((m) => m.id)
  const deadline = performance.now() + 30_000
  const complete = () => users.every((_, u) => socketsOf[u]!.every((ws) => received.get(ws)!.size >= expectedFor(u).length))
  while (!complete() && performance.now() < deadline) await Bun.sleep(200)

  let missing = 0
  let duplicated = 0
  let deliveries = 0
  for (let u = 0; u < USERS; u++) {
    const expected = expectedFor(u)
    for (const ws of socketsOf[u]!) {
      const seen = received.get(ws)!
      for (const id of expected) {
        const times = seen.get(id) ?? 0
        if (times === 0) missing++
        if (times > 1) duplicated++
        deliveries += times
      }
    }
  }
  const rssAfter = rssMiB(pid)
  closing = true
  for (const sockets of socketsOf) for (const ws of sockets) ws.close()

  const result = {
    sockets: USERS * SOCKETS_PER_USER,
    conversations: CONVERSATIONS,
    seconds: SECONDS,
    messages: sent.length,
    deliveries,
    missing,
    duplicated,
    errorFrames,
    unexpectedCloses,
    rssMiB: { before: +rssBefore.toFixed(1), duringMax: +Math.max(...rssDuring).toFixed(1), after: +rssAfter.toFixed(1) },
  }
  console.log(JSON.stringify(result, null, 2))
  const ok = missing === 0 && duplicated === 0 && errorFrames === 0 && unexpectedCloses === 0
  log(ok ? 'PASS: every message delivered exactly once to every socket, no errors' : 'FAIL')
  process.exitCode = ok ? 0 : 1
} finally {
  server.process.kill('SIGTERM')
  await server.process.exited
  rmSync(dir, { recursive: true, force: true })
}
