import { join } from 'node:path'

const MAIN = join(import.meta.dir, '..', '..', 'src', 'main.ts')

/**
 * Reads a process's stdout as JSON log lines for as long as it runs (a reader that stopped would
 * close the pipe, and the server's next log line would die of EPIPE); waitFor() resolves on a match.
 */
export function logsOf(stream: ReadableStream<Uint8Array>) {
  const lines: any[] = []
  /** Lines that were not JSON: whatever else wrote to the same stdout. */
  const foreign: string[] = []
  const waiters: Array<{ match: (line: any) => boolean; resolve: (line: any) => void }> = []
  const ended = (async () => {
    const decoder = new TextDecoder()
    let buffer = ''
    for await (const chunk of stream) {
      buffer += decoder.decode(chunk, { stream: true })
      let newline: number
      while ((newline = buffer.indexOf('\n')) !== -1) {
        const text = buffer.slice(0, newline)
        buffer = buffer.slice(newline + 1)
        // Lines that are not JSON are kept apart, for tests that check there are none.
        let line: any
        try {
          line = JSON.parse(text)
        } catch {
          foreign.push(text)
          continue
        }
        lines.push(line)
        for (const w of [...waiters]) if (w.match(line)) waiters.splice(waiters.indexOf(w), 1), w.resolve(line)
      }
    }
  })()
  return {
    /** Every JSON line so far. */
    lines,
    foreign,
    /** Resolves once the stream has ended (the process closed its stdout). */
    ended,
    waitFor(match: (line: any) => boolean): Promise<any> {
      const seen = lines.find(match)
      if (seen) return Promise.resolve(seen)
      let timer: Timer | undefined
      return Promise.race([
        new Promise((resolve) => waiters.push({ match, resolve })),
        ended.then(() => {
          throw new Error('process ended before the expected log line')
        }),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('no matching log line within 15 s')), 15_000))),
      ]).finally(() => clearTimeout(timer))
    },
  }
}

export type ServerProcess = { base: string; process: Bun.Subprocess<'ignore', 'pipe', 'pipe'>; logs: ReturnType<typeof logsOf> }

/**
 * `bun src/main.ts` as its own process on a free port, once it says it is listening. `prefix` runs
 * it through another command first (the benchmarks pin it to a core with taskset).
 */
export async function startServer(env: Record<string, string>, prefix: string[] = []): Promise<ServerProcess> {
  const child = Bun.spawn([...prefix, process.execPath, MAIN], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  })
  const logs = logsOf(child.stdout)
  try {
    const listening = await logs.waitFor((l) => l.msg === 'pneumatic listening')
    return { base: listening.url.replace('0.0.0.0', '127.0.0.1'), process: child, logs }
  } catch (error) {
    child.kill('SIGKILL') // never left running behind a test that could not use it
    throw error
  }
}

export type JsonReply = { status: number; headers: Headers; body: any }

/**
 * A JSON client of a server at `base`, as the guide's clients talk to it: a GET without a body, a
 * POST with one, the access token as a bearer. The body is parsed (null for an empty one, a 204).
 */
export function jsonClient(base: string, init: BunFetchRequestInit = {}) {
  return async (path: string, token?: string, body?: unknown, method: string = body === undefined ? 'GET' : 'POST'): Promise<JsonReply> => {
    const reply = await fetch(base + path, {
      ...init,
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await reply.text()
    return { status: reply.status, headers: reply.headers, body: text ? JSON.parse(text) : null }
  }
}

/** Server processes on one configuration (the nodes of a cluster), killed on dispose. */
export async function startNodes(env: Record<string, string>, count = 2) {
  const nodes: ServerProcess[] = []
  for (let i = 0; i < count; i++) nodes.push(await startServer(env))
  return Object.assign(nodes, {
    async [Symbol.asyncDispose]() {
      for (const node of nodes) node.process.kill('SIGKILL')
      await Promise.all(nodes.map((n) => n.process.exited))
    },
  })
}
