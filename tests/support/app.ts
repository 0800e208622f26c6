import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createApp, type App } from '../../src/app'
import { createAuthThrottle } from '../../src/auth/throttle'
import { createTokens } from '../../src/auth/tokens'
import { loadConfig, type LogLevel, type MessageWriterKind } from '../../src/config'
import { openStore } from '../../src/db/store'
import type { SqliteStore } from '../../src/db/store.sqlite'
import { createMessageWriter } from '../../src/messages/writer'
import type { AppDeps } from '../../src/deps'
import { createLogger, type Logger } from '../../src/observability/logger'
import { createMetrics } from '../../src/observability/metrics'
import { createLocalBus } from '../../src/realtime/bus'

export const TEST_SECRET = 'test-secret-that-is-at-least-32-characters-long'

/**
 * Tests run many requests as one user, or as one 'unknown' client under app.handle: limits are
 * off unless a test sets its own (tests/observability/rate-limit.test.ts does).
 */
const NO_RATE_LIMITS = {
  RATE_LIMIT_PER_MINUTE: '0',
  RATE_LIMIT_PER_HOUR: '0',
  LOGIN_FAILURE_LIMIT_PER_IP: '0',
  LOGIN_FAILURE_LIMIT_PER_USERNAME: '0',
  SIGNUP_LIMIT_PER_IP: '0',
  WS_FRAME_LIMIT_PER_MINUTE: '0',
}

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
  /** How messages are committed (MESSAGE_WRITER): inline on the event loop by default, or in a worker. */
  writer?: MessageWriterKind
}

export async function testApp(env: Record<string, string> = {}, options: TestAppOptions = {}): Promise<TestApp> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'pneumatic-test-'))
  const config = loadConfig({ DATABASE_URL: `sqlite:${join(dir, 'test.db')}`, JWT_SECRET: TEST_SECRET, LOG_LEVEL: 'silent', ...NO_RATE_LIMITS, ...env })
  const store = await openStore(config.database, { messageWriter: options.writer ?? config.messageWriter })
  const deps: AppDeps = {
    config,
    store,
    writer: createMessageWriter(store),
    tokens: createTokens({ secret: TEST_SECRET, accessTtlSeconds: config.accessTokenTtlSeconds, refreshTtlSeconds: config.refreshTokenTtlSeconds }),
    authThrottle: createAuthThrottle(config),
    bus: createLocalBus((error) => {
      throw error
    }),
    logger: options.logger ?? createLogger('silent'),
    metrics: createMetrics(),
  }
  const app = createApp(deps)
  let handedOver = false
  const stop = async () => {
    if (app.server) await app.stop(true)
    await deps.writer.close()
    await store.close()
  }
  return {
    app,
    deps,
    dir,
    async restart() {
      const port = app.server?.port
      await stop()
      handedOver = true
      const next = await testApp(env, { ...options, dir })
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

/** The SQLite store under a test app, for tests of what only SQLite has (pragmas, the file, query plans). */
export function sqliteOf(t: Pick<TestApp, 'deps'>): SqliteStore {
  const { store } = t.deps
  if (store.engine !== 'sqlite') throw new Error('This test needs the SQLite engine')
  return store as SqliteStore
}

/** Listens on a free port; returns the base URLs. */
export function listen(app: App): { http: string; ws: string } {
  app.listen({ port: 0, hostname: '127.0.0.1' })
  const http = `http://127.0.0.1:${app.server!.port}`
  return { http, ws: http.replace('http', 'ws') + '/ws' }
}

type LogLine = Record<string, any>

/**
 * A logger that keeps every JSON line it writes, for tests that read the logs. Some lines are
 * written after a response has gone (request logs, socket closes): waitFor() resolves when a
 * matching line is written, and fails after 5 s.
 */
export function captureLogs(level: LogLevel = 'info') {
  const raw: string[] = []
  const waiters: Array<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = []
  const logger = createLogger(level, {
    write(chunk: string) {
      raw.push(chunk)
      const line = JSON.parse(chunk) as LogLine
      for (const w of [...waiters]) {
        if (!w.match(line)) continue
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(line)
      }
    },
  })
  return {
    logger,
    get lines(): LogLine[] {
      return raw.map((l) => JSON.parse(l))
    },
    text: () => raw.join(''),
    waitFor(match: (l: LogLine) => boolean): Promise<LogLine> {
      const seen = raw.map((l) => JSON.parse(l) as LogLine).find(match)
      if (seen) return Promise.resolve(seen)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no matching log line within 5 s')), 5000)
        waiters.push({ match, resolve: (l) => (clearTimeout(timer), resolve(l)) })
      })
    },
  }
}
