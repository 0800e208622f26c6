import { dirname } from 'node:path'

/** Where the SQLite database lives: a file path or ':memory:'. */
export type DatabaseLocation = { kind: 'sqlite'; path: string }

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

export type Config = Readonly<{
  port: number
  host: string
  database: DatabaseLocation
  /** Directory for state that must survive restarts (the generated JWT secret); null for an in-memory database. */
  dataDir: string | null
  jwtSecret: string | null
  accessTokenTtlSeconds: number
  refreshTokenTtlSeconds: number
  rateLimitPerMinute: number
  rateLimitPerHour: number
  logLevel: LogLevel
}>

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    reason: string,
  ) {
    super(`Invalid configuration: ${variable} ${reason}`)
  }
}

type Env = Record<string, string | undefined>

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']
const MIN_SECRET_LENGTH = 32

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim()
  if (raw === undefined || raw === '') return fallback
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`)
  const value = Number(raw)
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`)
  return value
}

export function parseDatabaseUrl(raw: string): DatabaseLocation {
  const url = raw.trim()
  if (url === '') throw new ConfigError('DATABASE_URL', 'must not be empty')
  if (url === 'sqlite::memory:' || url === ':memory:') return { kind: 'sqlite', path: ':memory:' }
  if (url.startsWith('sqlite:')) {
    // sqlite:./data/x.db, sqlite:/abs/x.db and sqlite:///abs/x.db all name a file.
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '')
    if (path === '') throw new ConfigError('DATABASE_URL', `has no file path: "${raw}"`)
    return { kind: 'sqlite', path }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new ConfigError('DATABASE_URL', `uses an unsupported scheme: "${url.split(':')[0]}" (supported: sqlite:<path>, sqlite::memory:, or a bare file path)`)
  }
  return { kind: 'sqlite', path: url }
}

export function loadConfig(env: Env = Bun.env): Config {
  const database = parseDatabaseUrl(env.DATABASE_URL ?? 'sqlite:./data/pneumatic.db')

  const jwtSecret = env.JWT_SECRET?.length ? env.JWT_SECRET : null
  if (jwtSecret !== null && jwtSecret.length < MIN_SECRET_LENGTH) {
    throw new ConfigError('JWT_SECRET', `must be at least ${MIN_SECRET_LENGTH} characters (HS256 needs a 256-bit key)`)
  }

  const logLevel = (env.LOG_LEVEL?.trim().toLowerCase() || 'info') as LogLevel
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got "${env.LOG_LEVEL}"`)
  }

  const host = env.HOST?.trim() || '0.0.0.0'

  return Object.freeze({
    port: integer(env, 'PORT', 8000, 0, 65535),
    host,
    database,
    dataDir: database.path === ':memory:' ? null : dirname(database.path),
    jwtSecret,
    accessTokenTtlSeconds: integer(env, 'ACCESS_TOKEN_TTL_SECONDS', 1800, 10, 86_400),
    refreshTokenTtlSeconds: integer(env, 'REFRESH_TOKEN_TTL_SECONDS', 604_800, 60, 31_536_000),
    rateLimitPerMinute: integer(env, 'RATE_LIMIT_PER_MINUTE', 60, 0, 1_000_000),
    rateLimitPerHour: integer(env, 'RATE_LIMIT_PER_HOUR', 1000, 0, 10_000_000),
    logLevel,
  })
}
