import { Database } from 'bun:sqlite'
import { describe, expect, test } from 'bun:test'
import { logsOf } from './support/process'
import { TestSocket } from './support/ws'
import { mkdtempSync, rmSync } from 'node:fs'
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
