import { describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServer } from '../support/process'

// Bun gives no sign when accept() fails for lack of descriptors; the server's probe must.
const OPEN_FILES = 128

describe('out of file descriptors', () => {
  test('a server that runs out of file descriptors says so in its log, and again once it has some back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pneumatic-fds-'))
    // `ulimit -n` sets the hard limit too, so Bun cannot raise it at start.
    const server = await startServer(
      { DATABASE_URL: `sqlite:${join(dir, 'chat.db')}`, JWT_SECRET: 'x'.repeat(40) },
      ['sh', '-c', `ulimit -n ${OPEN_FILES} && exec "$0" "$@"`],
    )
    const clients: Socket[] = []
    try {
      const { port } = new URL(server.base)
      // More connections than the server has descriptors: the kernel completes each handshake,
      // so they connect whether or not the server can accept them.
      for (let i = 0; i < OPEN_FILES + 20; i++) {
        const client = connect(Number(port), '127.0.0.1')
        client.on('error', () => {})
        clients.push(client)
      }

      const exhausted = await server.logs.waitFor((l) => l.msg === 'out of file descriptors: new connections cannot be accepted')
      expect(exhausted).toMatchObject({ level: 'error', code: 'EMFILE', limit: OPEN_FILES })

      for (const client of clients) client.destroy()
      expect(await server.logs.waitFor((l) => l.msg === 'file descriptors available again: accepting connections')).toMatchObject({ level: 'warn', limit: OPEN_FILES })
      expect((await fetch(`${server.base}/health`)).status).toBe(200)
    } finally {
      for (const client of clients) client.destroy()
      server.process.kill('SIGKILL')
      await server.process.exited
      rmSync(dir, { recursive: true, force: true })
    }
  }, 40_000)
})
