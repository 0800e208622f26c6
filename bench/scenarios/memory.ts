/**
 * Memory: resident memory per idle authenticated WebSocket. Each round starts a fresh server (a
 * fresh Pneumatic on the chat database, or a fresh bare chat server), opens one socket to warm its
 * code paths, reads VmRSS, opens N more idle sockets, waits a second, reads VmRSS again:
 * (after − before) / N. Pneumatic's sockets belong to 100 users with N/100 devices each (the
 * tokens come from the chat scenarios' logins), so each socket is authenticated and subscribed to
 * its user's conversations; the bare server's sockets each subscribe to one topic. Those users
 * are bench_0 … bench_99 of the chat fixture: each is in one room; bench_0 … bench_31 also in the
 * group of 32, and bench_0 and bench_1 in the pair, so a socket has 1.34 topics on average.
 *
 * The server is killed before the client closes anything, so the TIME_WAIT sockets are the
 * server's (on a port never used again), not the load generator's ephemeral ports.
 */
import { join } from 'node:path'
import { BASELINES, compare, onServerCore, openSocket, openSockets, quick, rssBytes, startPneumatic, stop, track, type Result, type Side } from '../lib'

const SOCKETS = quick ? 2_000 : 10_000
const USERS = 100

type Target = { pid: number; url: (i: number) => string; kill(): Promise<void> }

async function perSocketKiB(start: () => Promise<Target>): Promise<number> {
  const target = await start()
  let sockets: WebSocket[] = []
  try {
    sockets.push(await openSocket(target.url(0)))
    await Bun.sleep(500)
    const before = rssBytes(target.pid)
    sockets = sockets.concat(await openSockets(Array.from({ length: SOCKETS }, (_, i) => target.url(i + 1)), 100))
    await Bun.sleep(1000)
    const after = rssBytes(target.pid)
    return (after - before) / SOCKETS / 1024
  } finally {
    await target.kill()
    await Promise.all(sockets.map((ws) => (ws.readyState === WebSocket.CLOSED ? undefined : new Promise((resolve) => ((ws.onclose = resolve), setTimeout(resolve, 5000))))))
  }
}

export async function memory(dir: string, database: string, tokens: string[]): Promise<Result[]> {
  const pneumatic: Side = {
    name: 'pneumatic',
    pid: () => undefined, // a new process each round
    measure: () =>
      perSocketKiB(async () => {
        const server = await startPneumatic(dir, database, {}, 'memory')
        return { pid: server.process.pid, url: (i) => `${server.ws}?token=${tokens[i % USERS]}`, kill: () => stop(server.process, 'SIGKILL') }
      }),
  }
  const bare: Side = {
    name: 'bare Bun.serve pub/sub',
    pid: () => undefined,
    measure: () =>
      perSocketKiB(async () => {
        const child = track(Bun.spawn([...onServerCore, process.execPath, join(BASELINES, 'bare-chat.ts')], { stdout: 'pipe', stderr: 'inherit' }))
        const reader = child.stdout.getReader()
        const { value } = await reader.read()
        reader.releaseLock()
        const url = JSON.parse(new TextDecoder().decode(value).split('\n')[0]!).url as string
        return { pid: child.pid, url: (i) => `${url}/?conversation=room-${i % USERS}`, kill: () => stop(child, 'SIGKILL') }
      }),
  }
  return [
    await compare(
      `memory per idle authenticated WebSocket (${SOCKETS.toLocaleString('en-US')} sockets)`,
      'KiB/socket',
      pneumatic,
      bare,
      '≤ 2× (lower is better)',
      (_, r) => r <= 2,
    ),
  ]
}
