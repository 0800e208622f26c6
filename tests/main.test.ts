import { describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const MAIN = join(import.meta.dir, '..', 'src', 'main.ts')

/** Reads JSON log lines from a process's stdout until one matches. */
async function waitForLog(stream: ReadableStream<Uint8Array>, match: (line: any) => boolean): Promise<any> {
  const decoder = new TextDecoder()
  let buffer = ''
  for await (const chunk of stream) {
    buffer += decoder.decode(chunk, { stream: true })
    let newline: number
    while ((newline = buffer.indexOf('\n')) !== -1) {
      const line = JSON.parse(buffer.slice(0, newline))
      buffer = buffer.slice(newline + 1)
      if (match(line)) return line
    }
  }
  throw new Error('process ended before the expected log line')
}

describe('bun src/main.ts', () => {
  test('starts on the configured database, serves, and exits cleanly on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pneumatic-main-'))
    try {
      const server = Bun.spawn([process.execPath, MAIN], {
        env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATABASE_URL: `sqlite:${join(dir, 'chat.db')}`, JWT_SECRET: '', LOG_LEVEL: 'info' },
        stdout: 'pipe',
        stderr: 'pipe',
      })
      const listening = await waitForLog(server.stdout, (l) => l.msg === 'pneumatic listening')
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

  test('refuses to start on invalid configuration, naming the variable', async () => {
    const server = Bun.spawn([process.execPath, MAIN], { env: { ...process.env, PORT: 'eighty' }, stdout: 'pipe', stderr: 'pipe' })
    expect(await server.exited).toBe(1)
    expect(await new Response(server.stderr).text()).toContain('PORT must be a whole number')
  })
})
