import { Database } from 'bun:sqlite'
import { describe, expect, test } from 'bun:test'
import { mountTmpfs, obeyingFileModes, skipMountTests } from './support/privileges'
import { logsOf } from './support/process'
import { TestSocket } from './support/ws'
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const MAIN = join(import.meta.dir, '..', 'src', 'main.ts')

describe('bun src/main.ts', () => {
  test('starts on the configured database, serves, and exits cleanly on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pneumatic-main-'))
    try {
      const server = Bun.spawn([process.execPath, MAIN], {
        env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATABASE_URL: `sqlite:${join(dir, 'chat.db')}`, JWT_SECRET: '', LOG_LEVEL: 'info' },
        stdout: 'pipe',
        stderr: 'pipe',
      })
      const listening = await logsOf(server.stdout).waitFor((l) => l.msg === 'pneumatic listening')
      expect(listening).toMatchObject({ level: 'info', time: expect.any(String) })
      const base = listening.url.replace('0.0.0.0', '127.0.0.1')
      expect(await (await fetch(`${base}/health`)).json()).toEqual({ status: 'healthy' })
      expect(await Bun.file(join(dir, 'jwt-secret')).exists()).toBe(true)
      expect(await Bun.file(join(dir, 'chat.db')).exists()).toBe(true)
      server.kill('SIGTERM')
      expect(await server.exited).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test.each(['SIGTERM', 'SIGINT'] as const)('on %s it closes sockets with 1001, exits 0 within 5 s, and leaves a sound database', async (signal) => {
    const dir = mkdtempSync(join(tmpdir(), 'pneumatic-main-'))
    try {
      const server = Bun.spawn([process.execPath, MAIN], {
        env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATABASE_URL: `sqlite:${join(dir, 'chat.db')}`, JWT_SECRET: 'x'.repeat(40), LOG_LEVEL: 'info' },
        stdout: 'pipe',
        stderr: 'pipe',
      })
      const listening = await logsOf(server.stdout).waitFor((l) => l.msg === 'pneumatic listening')
      const base = listening.url.replace('0.0.0.0', '127.0.0.1')
      const post = (path: string, body: unknown) => fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      await post('/auth/signup', { username: 'alice', password: 'password123' })
      const { access_token } = (await (await post('/auth/login', { username: 'alice', password: 'password123' })).json()) as { access_token: string }
      using socket = await TestSocket.open(`${base.replace('http', 'ws')}/ws?token=${access_token}`)
      const started = performance.now()
      server.kill(signal)
      expect((await socket.closed).code).toBe(1001)
      expect(await server.exited).toBe(0)
      expect(performance.now() - started).toBeLessThan(5000)
      const db = new Database(join(dir, 'chat.db'), { readonly: true })
      expect(db.query('PRAGMA integrity_check').get()).toEqual({ integrity_check: 'ok' })
      expect(db.query('SELECT count(*) AS n FROM users').get()).toEqual({ n: 1 })
      db.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('`bun run start` writes only JSON lines to stdout, and passes SIGTERM to the server: nothing is left holding the port', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pneumatic-start-'))
    try {
      const runner = Bun.spawn([process.execPath, 'run', 'start'], {
        cwd: join(import.meta.dir, '..'),
        // A variable no longer read is named in a warning, on stdout as JSON like every other line.
        env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATABASE_URL: `sqlite:${join(dir, 'chat.db')}`, JWT_SECRET: 'x'.repeat(40), LOG_LEVEL: 'info', AUTH_RATE_LIMIT_PER_MINUTE: '5' },
        stdout: 'pipe',
        stderr: 'pipe',
      })
      const logs = logsOf(runner.stdout)
      const listening = await logs.waitFor((l) => l.msg === 'pneumatic listening')
      expect(await logs.waitFor((l) => l.level === 'warn' && /^AUTH_RATE_LIMIT_PER_MINUTE is no longer read/.test(l.msg))).toBeDefined()
      const base = listening.url.replace('0.0.0.0', '127.0.0.1')
      expect((await fetch(`${base}/health`)).status).toBe(200)
      runner.kill('SIGTERM')
      expect(await runner.exited).toBe(0)
      await logs.ended
      // `bun install`'s report goes to stderr, so `… run start | jq` reads JSON only (the README's example).
      expect(logs.foreign).toEqual([])
      // The server was a child of `bun run`: had it been orphaned, it would still answer here.
      expect(await fetch(`${base}/health`).then(() => 'still answering', () => 'gone')).toBe('gone')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)

  test('refuses to start on invalid configuration, naming the variable', async () => {
    const server = Bun.spawn([process.execPath, MAIN], { env: { ...process.env, PORT: 'eighty' }, stdout: 'pipe', stderr: 'pipe' })
    expect(await server.exited).toBe(1)
    expect(await new Response(server.stderr).text()).toContain('PORT must be a whole number')
  })
})

/** Every file and directory under `dir`: kind, mode, size and content, to show nothing was touched. */
function snapshot(dir: string): Record<string, string> {
  const seen: Record<string, string> = {}
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name)
    const stat = lstatSync(path)
    if (!stat.isFile()) seen[name] = `${stat.isDirectory() ? 'dir' : 'other'} ${stat.mode.toString(8)}`
    else seen[name] = `file ${stat.mode.toString(8)} ${stat.size} ${stat.mtimeMs} ${stat.mode & 0o444 ? Bun.hash(readFileSync(path)) : '(unreadable)'}`
  }
  return seen
}

/** A SQLite database of someone else's, with no migrations applied: opening it as ours would migrate it. */
function foreignDatabase(path: string): void {
  const sqlite = new Database(path, { create: true })
  sqlite.run('CREATE TABLE notes (text TEXT)')
  sqlite.run("INSERT INTO notes VALUES ('keep me')")
  sqlite.close()
}

type Refusal = { exitCode: number; stdout: string; stderr: string }

async function start(databaseUrl: string, prefix: string[] = []): Promise<Refusal> {
  const server = Bun.spawn([...prefix, process.execPath, MAIN], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATABASE_URL: databaseUrl, JWT_SECRET: '', LOG_LEVEL: 'info' },
    stdout: 'pipe',
    stderr: 'pipe',
  })
  const [exitCode, stdout, stderr] = await Promise.all([server.exited, new Response(server.stdout).text(), new Response(server.stderr).text()])
  return { exitCode, stdout, stderr }
}

describe('bun src/main.ts with a DATABASE_URL that cannot hold a database', () => {
  type Case = { what: string; arrange(dir: string): string; prefix?: () => string[]; cause: (dir: string) => string }
  const cases: Case[] = [
    {
      what: 'a directory',
      arrange: (dir) => (mkdirSync(join(dir, 'chat.db')), join(dir, 'chat.db')),
      cause: () => 'is a directory, not a database file',
    },
    {
      what: 'a file it may not read',
      arrange: (dir) => (foreignDatabase(join(dir, 'chat.db')), chmodSync(join(dir, 'chat.db'), 0o000), join(dir, 'chat.db')),
      prefix: obeyingFileModes,
      cause: () => 'cannot be read: permission denied',
    },
    {
      what: 'a file it may only read',
      arrange: (dir) => (foreignDatabase(join(dir, 'chat.db')), chmodSync(join(dir, 'chat.db'), 0o444), join(dir, 'chat.db')),
      prefix: obeyingFileModes,
      cause: () => 'cannot be written: permission denied',
    },
    {
      what: 'a file in a directory where it may not create the -wal and -shm files',
      arrange: (dir) => (mkdirSync(join(dir, 'locked')), foreignDatabase(join(dir, 'locked', 'chat.db')), chmodSync(join(dir, 'locked'), 0o555), join(dir, 'locked', 'chat.db')),
      prefix: obeyingFileModes,
      cause: () => 'is in a directory where SQLite cannot create its -wal and -shm files: permission denied',
    },
    {
      what: 'a text file',
      arrange: (dir) => (writeFileSync(join(dir, 'chat.db'), 'shopping list: milk, eggs\n'), join(dir, 'chat.db')),
      cause: () => 'is not a SQLite database',
    },
    {
      what: 'a path whose directory cannot be created',
      arrange: (dir) => (writeFileSync(join(dir, 'data'), 'a file where the directory would go\n'), join(dir, 'data', 'sub', 'chat.db')),
      cause: (dir) => `cannot be created: ${JSON.stringify(join(dir, 'data'))} is not a directory`,
    },
  ]

  test.each(cases)('$what: one line on stderr naming DATABASE_URL, the path and the cause, exit 1, and nothing touched', async ({ arrange, prefix, cause }) => {
    const dir = mkdtempSync(join(tmpdir(), 'pneumatic-refused-'))
    try {
      const path = arrange(dir)
      const before = snapshot(dir)
      const { exitCode, stdout, stderr } = await start(`sqlite:${path}`, prefix?.())
      expect({ exitCode, stdout, stderr }).toEqual({ exitCode: 1, stdout: '', stderr: `Invalid configuration: DATABASE_URL points to ${JSON.stringify(path)}, which ${cause(dir)}\n` })
      // No directory made, no -wal or -shm, no jwt-secret, no migration: every file as it was.
      expect(snapshot(dir)).toEqual(before)
    } finally {
      chmodSync(dir, 0o700)
      for (const name of readdirSync(dir)) chmodSync(join(dir, name), 0o700)
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test.skipIf(skipMountTests)('a database on a volume mounted read-only: one line naming the cause, exit 1, and nothing touched', async () => {
    using volume = mountTmpfs(1024 * 1024)
    const path = join(volume.dir, 'chat.db')
    foreignDatabase(path)
    volume.remountReadOnly()
    const before = snapshot(volume.dir)
    const { exitCode, stdout, stderr } = await start(path)
    expect({ exitCode, stdout, stderr }).toEqual({ exitCode: 1, stdout: '', stderr: `Invalid configuration: DATABASE_URL points to ${JSON.stringify(path)}, which cannot be written: read-only file system\n` })
    expect(snapshot(volume.dir)).toEqual(before)
  })
})
