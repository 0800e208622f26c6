import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createApp, type App } from '../../src/app'
import { createTokens } from '../../src/auth/tokens'
import { loadConfig, type LogLevel } from '../../src/config'
import { openDatabase } from '../../src/db/client'
import type { AppDeps } from '../../src/deps'
import { createLogger, type Logger } from '../../src/observability/logger'
import { createLocalBus } from '../../src/realtime/bus'

export const TEST_SECRET = 'test-secret-that-is-at-least-32-characters-long'

export type TestApp = {
  app: App
  deps: AppDeps
  dir: string
  /**
   * Stops this server (closing its sockets) and starts a new app on the same database file and,
   * if this one was listening, the same port: a server restart as clients see it.
   */
  restart(): Promise<TestApp>
  [Symbol.asyncDispose](): Promise<void>
}

/** A complete app on a fresh SQLite file of its own (or on `dir`'s, to restart), as main.ts builds it. */
export type TestAppOptions = {
  /** Reuse this directory's database (a restart); a fresh one otherwise. */
  dir?: string
  /** Where the app logs (silent by default); see captureLogs(). */
  logger?: Logger
}

export function testApp(env: Record<string, string> = {}, options: TestAppOptions = {}): TestApp {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'pneumatic-test-'))
  const config = loadConfig({ DATABASE_URL: `sqlite:${join(dir, 'test.db')}`, JWT_SECRET: TEST_SECRET, LOG_LEVEL: 'silent', ...env })
  const database = openDatabase(config.database.path)
  const deps: AppDeps = {
    config,
    db: database.db,
    sqlite: database.sqlite,
    tokens: createTokens({ secret: TEST_SECRET, accessTtlSeconds: config.accessTokenTtlSeconds, refreshTtlSeconds: config.refreshTokenTtlSeconds }),
    bus: createLocalBus((error) => {
      throw error
    }),
    logger: options.logger ?? createLogger('silent'),
  }
  const app = createApp(deps)
  let handedOver = false
  const stop = async () => {
    if (app.server) await app.stop(true)
    database.close()
  }
  return {
    app,
    deps,
    dir,
    async restart() {
      const port = app.server?.port
      await stop()
      handedOver = true
      const next = testApp(env, { ...options, dir })
      if (port) next.app.listen({ port, hostname: '127.0.0.1' })
      return next
    },
    async [Symbol.asyncDispose]() {
      if (handedOver) return
      await stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Listens on a free port; returns the base URLs. */
export function listen(app: App): { http: string; ws: string } {
  app.listen({ port: 0, hostname: '127.0.0.1' })
  const http = `http://127.0.0.1:${app.server!.port}`
  return { http, ws: http.replace('http', 'ws') + '/ws' }
}

/** A logger that keeps every JSON line it writes, for tests that read the logs. */
export function captureLogs(level: LogLevel = 'info'): { logger: Logger; lines: Record<string, unknown>[]; text: () => string } {
  const raw: string[] = []
  const logger = createLogger(level, { write: (chunk: string) => void raw.push(chunk) })
  return { logger, get lines() { return raw.map((l) => JSON.parse(l)) }, text: () => raw.join('') }
}
