import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const READY = 'Ready to accept connections'

/** A port nothing listens on right now: the kernel's pick for a listener that is closed at once. */
function freePort(): number {
  const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const { port } = probe
  probe.stop(true)
  return port
}

/**
 * A `redis-server` of the test's own on a free port, with a temporary directory and no persistence:
 * tests that kill or restart Redis never touch the machine's server at 6379. `restart()` brings a new
 * process up on the same port (what clients see when Redis restarts); dispose kills it.
 */
export type RedisServer = {
  url: string
  port: number
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>
  /** Kills the server (SIGKILL) and waits for it to exit. */
  kill(): Promise<void>
  /** Starts the server again on the same port (after stop or kill); resolves once it accepts connections. */
  start(): Promise<void>
  /** stop() then start(). */
  restart(): Promise<void>
  /** Runs a command with redis-cli, a connection no client under test owns; its output, trimmed. */
  cli(...args: string[]): Promise<string>
  [Symbol.asyncDispose](): Promise<void>
}

export async function startRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'pneumatic-redis-'))
  const port = freePort()
  let child: Bun.Subprocess<'ignore', 'pipe', 'inherit'> | null = null

  async function start() {
    if (child) throw new Error('redis-server is already running')
    const spawned = Bun.spawn(['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'inherit',
    })
    child = spawned
    // Ready once it says so in its log; the stream ending first means it could not start. The same
    // reader goes on reading afterwards, so a full pipe never blocks the server's logging.
    const reader = spawned.stdout.getReader()
    const decoder = new TextDecoder()
    let output = ''
    const timer = setTimeout(() => spawned.kill('SIGKILL'), 10_000)
    try {
      while (!output.includes(READY)) {
        const { done, value } = await reader.read()
        if (done) break
        output += decoder.decode(value, { stream: true })
      }
    } finally {
      clearTimeout(timer)
    }
    if (!output.includes(READY)) {
      child = null
      throw new Error(`redis-server did not start on port ${port}:\n${output}`)
    }
    void (async () => {
      while (!(await reader.read()).done);
    })().catch(() => {})
  }

  async function end(signal: 'SIGTERM' | 'SIGKILL') {
    const running = child
    if (!running) return
    child = null
    running.kill(signal)
    await running.exited
  }

  await start()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
    async restart() {
      await end('SIGTERM')
      await start()
    },
    async cli(...args) {
      const child = Bun.spawn(['redis-cli', '-p', String(port), ...args], { stdout: 'pipe', stderr: 'pipe' })
      const output = await new Response(child.stdout).text()
      await child.exited
      return output.trim()
    },
    async [Symbol.asyncDispose]() {
      await end('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
