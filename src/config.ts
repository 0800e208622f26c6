import { dirname } from 'node:path'

/**
 * Where the data lives: a SQLite file (a path or ':memory:'), or a PostgreSQL server that several
 * nodes may share, reached with a pool of `poolSize` connections per node.
 */
export type DatabaseLocation = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string; poolSize: number }

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

type TracesExporter = 'none' | 'console' | 'otlp'

export type Config = Readonly<{
  port: number
  host: string
  database: DatabaseLocation
  /** The Redis server that carries events between nodes (REDIS_URL); null: one process, events stay in it. */
  redisUrl: string | null
  /** Directory for state that must survive restarts (the generated JWT secret); null for an in-memory database or PostgreSQL. */
  dataDir: string | null
  jwtSecret: string | null
  accessTokenTtlSeconds: number
  refreshTokenTtlSeconds: number
  /** How long the refresh token a refresh just replaced is answered again with the same pair; 0: never. */
  refreshReuseGraceSeconds: number
  /** How long a conversation's changes can be replayed (GET …/events, resume); older ones are pruned. */
  eventRetentionDays: number
  rateLimitPerMinute: number
  rateLimitPerHour: number
  /** Failed logins per client IP, per username, and signups per client IP, in each authLimitWindowSeconds (password guessing); 0 turns one off. */
  loginFailureLimitPerIp: number
  loginFailureLimitPerUsername: number
  signupLimitPerIp: number
  authLimitWindowSeconds: number
  /** Frames one WebSocket connection may send per minute; 0 turns it off. */
  wsFrameLimitPerMinute: number
  /** A socket that answers no ping and sends nothing for this long is closed. */
  wsIdleTimeoutSeconds: number
  /** Ping and pong control frames one WebSocket connection may send per minute; never off. */
  wsPingLimitPerMinute: number
  /** Open WebSockets one user may have at once; one more is refused (close 1013). */
  wsMaxSocketsPerUser: number
  /** Bytes buffered for slow readers across all sockets before the slowest are disconnected. */
  wsSendBufferBudgetBytes: number
  /** How long after someone's last socket closes they are still online: a reload within it changes nothing. */
  presenceGraceSeconds: number
  /** With REDIS_URL: a node silent this long is taken for gone, and its users' sockets with it (presence). */
  presenceNodeTimeoutSeconds: number
  /** How many proxies in front of us to believe in X-Forwarded-For (0: none, use the socket's address). */
  trustProxyHops: number
  /** Origins besides our own whose pages may open a cookie-authenticated WebSocket. */
  allowedOrigins: readonly string[]
  /** Where message batches are committed: on the event loop ('inline') or a Worker thread ('worker'). */
  messageWriter: MessageWriterKind
  /** How long one search may run before it is stopped (503 search_timeout). */
  searchTimeoutMs: number
  logLevel: LogLevel
  tracing: Readonly<{ exporter: TracesExporter; otlpEndpoint: string; serviceName: string }>
  /** What is valid but worth saying at start-up (a variable that is no longer read). */
  warnings: readonly string[]
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

export type MessageWriterKind = 'inline' | 'worker'
const MESSAGE_WRITERS: readonly MessageWriterKind[] = ['inline', 'worker']

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

const DEFAULT_POOL_SIZE = 10

/** DATABASE_URL: `sqlite:<path>`, `sqlite::memory:`, a bare path, or `postgres://` / `postgresql://` (pool size from DATABASE_POOL_SIZE in `env`). */
export function parseDatabaseUrl(raw: string, env: Env = {}): DatabaseLocation {
  const url = raw.trim()
  if (url === '') throw new ConfigError('DATABASE_URL', 'must not be empty')
  if (/^postgres(ql)?:\/\//i.test(url)) {
    // Never echo it: a URL that does not parse may still hold a password.
    if (!URL.canParse(url)) throw new ConfigError('DATABASE_URL', 'is not a valid postgres:// URL (user, password and database name must be percent-encoded)')
    return { kind: 'postgres', url, poolSize: integer(env, 'DATABASE_POOL_SIZE', DEFAULT_POOL_SIZE, 1, 1000) }
  }
  if (url === 'sqlite::memory:' || url === ':memory:') return { kind: 'sqlite', path: ':memory:' }
  if (url.startsWith('sqlite:')) {
    // sqlite:./data/x.db, sqlite:/abs/x.db and sqlite:///abs/x.db all name a file.
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '')
    if (path === '') throw new ConfigError('DATABASE_URL', `has no file path: "${raw}"`)
    return { kind: 'sqlite', path }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new ConfigError(
      'DATABASE_URL',
      `uses an unsupported scheme: "${url.split(':')[0]}" (supported: sqlite:<path>, sqlite::memory:, a bare file path, or postgres://user:password@host:port/database)`,
    )
  }
  return { kind: 'sqlite', path: url }
}

/** REDIS_URL: unset, or redis:// / rediss:// (TLS). */
function redisUrl(env: Env): string | null {
  const url = env.REDIS_URL?.trim()
  if (!url) return null
  // Never echo it: it may hold a password.
  if (!/^rediss?:\/\//i.test(url) || !URL.parse(url)?.hostname) {
    throw new ConfigError('REDIS_URL', 'must be a redis:// or rediss:// URL, such as redis://:password@127.0.0.1:6379 (percent-encode the password)')
  }
  return url
}

/** TRUST_PROXY: false (default), true (one proxy) or how many proxies. */
function trustProxy(env: Env): number {
  const raw = env.TRUST_PROXY?.trim().toLowerCase()
  if (raw === undefined || raw === '' || raw === 'false') return 0
  if (raw === 'true') return 1
  if (/^\d+$/.test(raw) && Number(raw) <= 10) return Number(raw)
  throw new ConfigError('TRUST_PROXY', `must be true, false or a number of proxies (0–10), got "${env.TRUST_PROXY}"`)
}

const TRACES_EXPORTERS: readonly TracesExporter[] = ['none', 'console', 'otlp']

/** ALLOWED_ORIGINS: comma-separated origins (scheme://host[:port]), normalised as browsers send them. */
function allowedOrigins(env: Env): string[] {
  const raw = env.ALLOWED_ORIGINS?.trim()
  if (!raw) return []
  return raw.split(',').map((entry) => {
    const url = URL.parse(entry.trim())
    if (!url || !/^https?:$/.test(url.protocol) || url.origin !== entry.trim().replace(/\/$/, '').toLowerCase()) {
      throw new ConfigError('ALLOWED_ORIGINS', `must list origins like https://chat.example.com, got "${entry.trim()}"`)
    }
    return url.origin
  })
}

export function loadConfig(env: Env = Bun.env): Config {
  // A setting that is no longer read must not be ignored in silence: whoever set it meant something.
  const warnings: string[] = []
  if (env.AUTH_RATE_LIMIT_PER_MINUTE !== undefined) {
    warnings.push(
      'AUTH_RATE_LIMIT_PER_MINUTE is no longer read: logins are throttled by their failures (LOGIN_FAILURE_LIMIT_PER_IP, LOGIN_FAILURE_LIMIT_PER_USERNAME) and signups per IP (SIGNUP_LIMIT_PER_IP), in windows of AUTH_LIMIT_WINDOW_SECONDS',
    )
  }
  const database = parseDatabaseUrl(env.DATABASE_URL ?? 'sqlite:./data/pneumatic.db', env)
  if (database.kind === 'sqlite') {
    const poolSize = integer(env, 'DATABASE_POOL_SIZE', DEFAULT_POOL_SIZE, 1, 1000)
    if (env.DATABASE_POOL_SIZE?.trim()) warnings.push(`DATABASE_POOL_SIZE (${poolSize}) is read only on PostgreSQL: SQLite has one connection`)
  }

  const jwtSecret = env.JWT_SECRET?.length ? env.JWT_SECRET : null
  if (jwtSecret !== null && jwtSecret.length < MIN_SECRET_LENGTH) {
    throw new ConfigError('JWT_SECRET', `must be at least ${MIN_SECRET_LENGTH} characters (HS256 needs a 256-bit key)`)
  }
  // A generated secret is kept beside a SQLite file; nodes sharing PostgreSQL must share one secret.
  if (jwtSecret === null && database.kind === 'postgres') {
    throw new ConfigError('JWT_SECRET', `must be set when DATABASE_URL points to PostgreSQL: every node sharing the database must sign and check tokens with the same secret (at least ${MIN_SECRET_LENGTH} characters)`)
  }

  const logLevel = (env.LOG_LEVEL?.trim().toLowerCase() || 'info') as LogLevel
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got "${env.LOG_LEVEL}"`)
  }

  const messageWriter = (env.MESSAGE_WRITER?.trim().toLowerCase() || 'inline') as MessageWriterKind
  if (!MESSAGE_WRITERS.includes(messageWriter)) {
    throw new ConfigError('MESSAGE_WRITER', `must be one of ${MESSAGE_WRITERS.join(', ')}, got "${env.MESSAGE_WRITER}"`)
  }
  if (messageWriter === 'worker' && database.kind === 'postgres') {
    throw new ConfigError('MESSAGE_WRITER', "must be inline on PostgreSQL: worker moves SQLite's synchronous commits off the event loop, and PostgreSQL's are asynchronous already")
  }

  const host = env.HOST?.trim() || '0.0.0.0'

  const exporter = (env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() || 'none') as TracesExporter
  if (!TRACES_EXPORTERS.includes(exporter)) {
    throw new ConfigError('OTEL_TRACES_EXPORTER', `must be one of ${TRACES_EXPORTERS.join(', ')}, got "${env.OTEL_TRACES_EXPORTER}"`)
  }
  const otlpEndpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || 'http://localhost:4318'
  if (!URL.canParse(otlpEndpoint)) throw new ConfigError('OTEL_EXPORTER_OTLP_ENDPOINT', `must be a URL, got "${otlpEndpoint}"`)

  return Object.freeze({
    port: integer(env, 'PORT', 8000, 0, 65535),
    host,
    database,
    redisUrl: redisUrl(env),
    dataDir: database.kind === 'postgres' || database.path === ':memory:' ? null : dirname(database.path),
    jwtSecret,
    accessTokenTtlSeconds: integer(env, 'ACCESS_TOKEN_TTL_SECONDS', 1800, 10, 86_400),
    refreshTokenTtlSeconds: integer(env, 'REFRESH_TOKEN_TTL_SECONDS', 604_800, 60, 31_536_000),
    // Capped: for as long as it lasts, a copied token used right after its owner's refresh goes unnoticed.
    refreshReuseGraceSeconds: integer(env, 'REFRESH_REUSE_GRACE_SECONDS', 30, 0, 300),
    eventRetentionDays: integer(env, 'EVENT_RETENTION_DAYS', 30, 1, 36_500),
    rateLimitPerMinute: integer(env, 'RATE_LIMIT_PER_MINUTE', 60, 0, 1_000_000),
    rateLimitPerHour: integer(env, 'RATE_LIMIT_PER_HOUR', 1000, 0, 10_000_000),
    loginFailureLimitPerIp: integer(env, 'LOGIN_FAILURE_LIMIT_PER_IP', 30, 0, 1_000_000),
    loginFailureLimitPerUsername: integer(env, 'LOGIN_FAILURE_LIMIT_PER_USERNAME', 10, 0, 1_000_000),
    signupLimitPerIp: integer(env, 'SIGNUP_LIMIT_PER_IP', 20, 0, 1_000_000),
    authLimitWindowSeconds: integer(env, 'AUTH_LIMIT_WINDOW_SECONDS', 900, 1, 86_400),
    wsFrameLimitPerMinute: integer(env, 'WS_FRAME_LIMIT_PER_MINUTE', 240, 0, 1_000_000),
    wsIdleTimeoutSeconds: integer(env, 'WS_IDLE_TIMEOUT_SECONDS', 60, 1, 960),
    wsPingLimitPerMinute: integer(env, 'WS_PING_LIMIT_PER_MINUTE', 60, 1, 1_000_000),
    wsMaxSocketsPerUser: integer(env, 'WS_MAX_SOCKETS_PER_USER', 20, 1, 100_000),
    wsSendBufferBudgetBytes: integer(env, 'WS_SEND_BUFFER_BUDGET_MIB', 64, 1, 1_048_576) * 1024 * 1024,
    presenceGraceSeconds: integer(env, 'PRESENCE_GRACE_SECONDS', 5, 0, 3600),
    presenceNodeTimeoutSeconds: integer(env, 'PRESENCE_NODE_TIMEOUT_SECONDS', 15, 2, 3600),
    trustProxyHops: trustProxy(env),
    allowedOrigins: Object.freeze(allowedOrigins(env)),
    messageWriter,
    searchTimeoutMs: integer(env, 'SEARCH_TIMEOUT_MS', 1000, 1, 60_000),
    logLevel,
    tracing: Object.freeze({ exporter, otlpEndpoint, serviceName: env.OTEL_SERVICE_NAME?.trim() || 'pneumatic' }),
    warnings: Object.freeze(warnings),
  })
}

/** The URL as it may be printed: its password (in the authority or as a parameter) masked. */
export function maskedUrl(raw: string): string {
  const url = URL.parse(raw)
  if (!url) return '(a URL that cannot be parsed)'
  if (url.password) url.password = '***'
  if (url.searchParams.has('password')) url.searchParams.set('password', '***')
  return url.toString()
}
