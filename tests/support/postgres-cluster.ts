import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'

/**
 * A throwaway PostgreSQL server of the machine's version, for tests that stop or restart the
 * database under a running server (the machine's own one at 127.0.0.1:5432 is shared by every test
 * file). initdb and pg_ctl on a data directory in a temp dir, on a free port, trust auth for
 * `postgres` on 127.0.0.1: nothing is registered with the system's cluster tooling, and dispose
 * stops the server and removes the directory. PostgreSQL refuses to run as root, so as root the
 * tools run as the `postgres` user.
 */
export type PostgresCluster = {
  readonly port: number
  /** The temp dir that holds the data directory, the socket and the server's log. */
  readonly dir: string
  /** The cluster's maintenance database, as user postgres. */
  readonly url: string
  /** A URL for another database of this cluster. */
  urlOf(database: string): string
  start(): Promise<void>
  /** `fast` (the default) ends sessions and shuts down cleanly; `immediate` is a crash to the clients. */
  stop(mode?: 'fast' | 'immediate'): Promise<void>
  restart(mode?: 'fast' | 'immediate'): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

const RUN_AS_POSTGRES = userInfo().uid === 0

function binDir(): string | null {
  const found = Bun.spawnSync(['pg_config', '--bindir'], { stdout: 'pipe', stderr: 'ignore' })
  const dir = found.success ? found.stdout.toString().trim() : ''
  return dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')) ? dir : null
}

const BIN = binDir()

/** Why throwaway clusters cannot be made here, or null when they can. */
export const clusterUnavailable: string | null = BIN === null ? 'pg_config, initdb or pg_ctl was not found' : null

async function run(command: string[], what: string): Promise<void> {
  const argv = RUN_AS_POSTGRES ? ['runuser', '-u', 'postgres', '--', ...command] : command
  const child = Bun.spawn(argv, { stdout: 'pipe', stderr: 'pipe', stdin: 'ignore' })
  const [code, out, err] = await Promise.all([child.exited, new Response(child.stdout).text(), new Response(child.stderr).text()])
  if (code !== 0) throw new Error(`${what} failed (exit ${code}): ${err.trim() || out.trim()}`)
}

/** A port that nothing listened on a moment ago. */
function freePort(): number {
  const listener = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const port = listener.port
  listener.stop(true)
  return port
}

/** Makes a new cluster and starts it. */
export async function createPostgresCluster(): Promise<PostgresCluster> {
  if (BIN === null) throw new Error(`cannot make a PostgreSQL cluster: ${clusterUnavailable}`)
  const root = mkdtempSync(join(tmpdir(), 'pneumatic-pg-'))
  const dataDir = join(root, 'data')
  const logFile = join(root, 'server.log')
  if (RUN_AS_POSTGRES) {
    const id = (flag: '-u' | '-g') => Number(Bun.spawnSync(['id', flag, 'postgres']).stdout.toString().trim())
    chownSync(root, id('-u'), id('-g'))
  }
  const port = freePort()
  const pgCtl = join(BIN, 'pg_ctl')
  // The socket in the temp dir too: nothing of this cluster lands where the system's cluster lives.
  const serverOptions = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${root} -c fsync=on`
  try {
    await run([join(BIN, 'initdb'), '-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '--encoding=UTF8', '--locale=C.UTF-8'], 'initdb')
  } catch (error) {
    rmSync(root, { recursive: true, force: true })
    throw error
  }

  let running = false
  const cluster: PostgresCluster = {
    port,
    dir: root,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    urlOf: (database) => `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    async start() {
      await run([pgCtl, 'start', '-D', dataDir, '-l', logFile, '-w', '-t', '30', '-o', serverOptions], 'pg_ctl start')
      running = true
    },
    async stop(mode = 'fast') {
      await run([pgCtl, 'stop', '-D', dataDir, '-m', mode, '-w', '-t', '30'], 'pg_ctl stop')
      running = false
    },
    async restart(mode = 'fast') {
      await run([pgCtl, 'restart', '-D', dataDir, '-l', logFile, '-m', mode, '-w', '-t', '30', '-o', serverOptions], 'pg_ctl restart')
      running = true
    },
    async [Symbol.asyncDispose]() {
      try {
        if (running) await cluster.stop('immediate')
      } finally {
        rmSync(root, { recursive: true, force: true })
      }
    },
  }
  try {
    await cluster.start()
  } catch (error) {
    rmSync(root, { recursive: true, force: true })
    throw error
  }
  return cluster
}
