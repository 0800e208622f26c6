import { describe, expect, test } from 'bun:test'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { resolveJwtSecret } from '../../src/auth/secret'
import { loadConfig } from '../../src/config'
import { createLogger } from '../../src/observability/logger'

function capture() {
  const lines: any[] = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)))
      done()
    },
  })
  return { logger: createLogger('info', stream), lines }
}

function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), 'pneumatic-secret-'))
  return { dir, [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) }
}

describe('resolveJwtSecret', () => {
  test('uses JWT_SECRET when set, without a warning', () => {
    const { logger, lines } = capture()
    expect(resolveJwtSecret(loadConfig({ JWT_SECRET: 'k'.repeat(40) }), logger)).toBe('k'.repeat(40))
    expect(lines).toEqual([])
  })

  test('generates a secret once, keeps it in the data directory (0600) and reuses it after a restart', () => {
    using tmp = tempDir()
    const config = loadConfig({ DATABASE_URL: `sqlite:${join(tmp.dir, 'db', 'chat.db')}` })
    const first = capture()
    const secret = resolveJwtSecret(config, first.logger)
    expect(secret.length).toBeGreaterThanOrEqual(32)
    expect(first.lines[0]).toMatchObject({ level: 'warn', msg: expect.stringContaining('JWT_SECRET is not set') })
    const file = join(tmp.dir, 'db', 'jwt-secret')
    expect(readFileSync(file, 'utf8').trim()).toBe(secret)
    expect(statSync(file).mode & 0o777).toBe(0o600)

    const second = capture()
    expect(resolveJwtSecret(config, second.logger)).toBe(secret)
    expect(second.lines[0].level).toBe('warn')
  })

  test('refuses a stored secret that is too short', () => {
    using tmp = tempDir()
    writeFileSync(join(tmp.dir, 'jwt-secret'), 'short\n')
    const config = loadConfig({ DATABASE_URL: join(tmp.dir, 'chat.db') })
    expect(() => resolveJwtSecret(config, capture().logger)).toThrow('shorter than 32')
  })

  test('with an in-memory database makes a fresh secret each time and warns', () => {
    const config = loadConfig({ DATABASE_URL: 'sqlite::memory:' })
    const { logger, lines } = capture()
    const a = resolveJwtSecret(config, logger)
    const b = resolveJwtSecret(config, logger)
    expect(a).not.toBe(b)
    expect(lines.map((l) => l.level)).toEqual(['warn', 'warn'])
  })
})
