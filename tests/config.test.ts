import { describe, expect, test } from 'bun:test'
import { ConfigError, loadConfig, parseDatabaseUrl } from '../src/config'

describe('loadConfig', () => {
  test('has the documented defaults', () => {
    expect(loadConfig({})).toEqual({
      port: 8000,
      host: '0.0.0.0',
      database: { kind: 'sqlite', path: './data/pneumatic.db' },
      redisUrl: null,
      dataDir: './data',
      jwtSecret: null,
      accessTokenTtlSeconds: 1800,
      refreshTokenTtlSeconds: 604800,
      refreshReuseGraceSeconds: 30,
      eventRetentionDays: 30,
      rateLimitPerMinute: 60,
      rateLimitPerHour: 1000,
      loginFailureLimitPerIp: 30,
      loginFailureLimitPerUsername: 10,
      signupLimitPerIp: 20,
      authLimitWindowSeconds: 900,
      wsFrameLimitPerMinute: 240,
      wsIdleTimeoutSeconds: 60,
      wsPingLimitPerMinute: 60,
      wsMaxSocketsPerUser: 20,
      wsSendBufferBudgetBytes: 64 * 1024 * 1024,
      presenceGraceSeconds: 5,
      presenceNodeTimeoutSeconds: 15,
      trustProxyHops: 0,
      allowedOrigins: [],
      messageWriter: 'inline',
      searchTimeoutMs: 1000,
      logLevel: 'info',
      tracing: { exporter: 'none', otlpEndpoint: 'http://localhost:4318', serviceName: 'pneumatic' },
      warnings: [],
    })
  })

  test('AUTH_RATE_LIMIT_PER_MINUTE, no longer read, is named in a warning with what replaced it', () => {
    const { warnings } = loadConfig({ AUTH_RATE_LIMIT_PER_MINUTE: '10' })
    expect(warnings).toEqual([expect.stringMatching(/^AUTH_RATE_LIMIT_PER_MINUTE is no longer read: .*LOGIN_FAILURE_LIMIT_PER_IP/)])
  })

  test.each([
    ['false', 0],
    ['true', 1],
    ['2', 2],
    ['', 0],
  ])('TRUST_PROXY=%s trusts %d proxies', (value, hops) => {
    expect(loadConfig({ TRUST_PROXY: value }).trustProxyHops).toBe(hops)
  })

  test('MESSAGE_WRITER picks where message batches are committed', () => {
    expect(loadConfig({ MESSAGE_WRITER: 'Worker' }).messageWriter).toBe('worker')
    expect(loadConfig({ MESSAGE_WRITER: 'inline' }).messageWriter).toBe('inline')
  })

  test('reads ALLOWED_ORIGINS as a list of origins', () => {
    expect(loadConfig({ ALLOWED_ORIGINS: 'https://Chat.Example.com, http://localhost:3000/' }).allowedOrigins).toEqual(['https://chat.example.com', 'http://localhost:3000'])
  })

  test('reads the OpenTelemetry variables', () => {
    expect(loadConfig({ OTEL_TRACES_EXPORTER: 'OTLP', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SERVICE_NAME: 'chat-eu' }).tracing).toEqual({
      exporter: 'otlp',
      otlpEndpoint: 'http://collector:4318',
      serviceName: 'chat-eu',
    })
  })

  test('is frozen', () => {
    expect(Object.isFrozen(loadConfig({}))).toBe(true)
  })

  test('reads every variable', () => {
    const config = loadConfig({
      PORT: '9000',
      HOST: '127.0.0.1',
      DATABASE_URL: 'sqlite:/var/lib/pneumatic/chat.db',
      REDIS_URL: 'rediss://:secret@redis.internal:6380/0',
      JWT_SECRET: 's'.repeat(32),
      ACCESS_TOKEN_TTL_SECONDS: '60',
      REFRESH_TOKEN_TTL_SECONDS: '3600',
      REFRESH_REUSE_GRACE_SECONDS: '0',
      EVENT_RETENTION_DAYS: '7',
      RATE_LIMIT_PER_MINUTE: '0',
      RATE_LIMIT_PER_HOUR: '5000',
      WS_PING_LIMIT_PER_MINUTE: '12',
      WS_MAX_SOCKETS_PER_USER: '3',
      WS_SEND_BUFFER_BUDGET_MIB: '8',
      LOG_LEVEL: 'DEBUG',
    })
    expect(config).toMatchObject({
      port: 9000,
      host: '127.0.0.1',
      database: { path: '/var/lib/pneumatic/chat.db' },
      dataDir: '/var/lib/pneumatic',
      redisUrl: 'rediss://:secret@redis.internal:6380/0',
      jwtSecret: 's'.repeat(32),
      accessTokenTtlSeconds: 60,
      refreshTokenTtlSeconds: 3600,
      refreshReuseGraceSeconds: 0,
      eventRetentionDays: 7,
      rateLimitPerMinute: 0,
      rateLimitPerHour: 5000,
      wsPingLimitPerMinute: 12,
      wsMaxSocketsPerUser: 3,
      wsSendBufferBudgetBytes: 8 * 1024 * 1024,
      logLevel: 'debug',
    })
  })

  test.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['ACCESS_TOKEN_TTL_SECONDS', '1.5'],
    ['ACCESS_TOKEN_TTL_SECONDS', '0'],
    ['REFRESH_TOKEN_TTL_SECONDS', 'forever'],
    ['REFRESH_REUSE_GRACE_SECONDS', '-1'],
    ['REFRESH_REUSE_GRACE_SECONDS', '301'],
    ['EVENT_RETENTION_DAYS', '0'],
    ['EVENT_RETENTION_DAYS', 'a month'],
    ['RATE_LIMIT_PER_MINUTE', 'lots'],
    ['RATE_LIMIT_PER_HOUR', '-5'],
    ['LOG_LEVEL', 'loud'],
    ['MESSAGE_WRITER', 'thread'],
    ['JWT_SECRET', 'too-short'],
    ['DATABASE_URL', 'mysql://localhost/chat'],
    ['DATABASE_URL', 'sqlite:'],
    ['REDIS_URL', 'http://127.0.0.1:6379'],
    ['REDIS_URL', '127.0.0.1:6379'],
    ['REDIS_URL', 'redis://'],
    ['DATABASE_POOL_SIZE', '0'],
    ['DATABASE_POOL_SIZE', '1001'],
    ['DATABASE_POOL_SIZE', 'ten'],
    ['TRUST_PROXY', 'sometimes'],
    ['ALLOWED_ORIGINS', 'chat.example.com'],
    ['ALLOWED_ORIGINS', 'https://chat.example.com/path'],
    ['ALLOWED_ORIGINS', 'ftp://chat.example.com'],
    ['TRUST_PROXY', '99'],
    ['LOGIN_FAILURE_LIMIT_PER_IP', 'ten'],
    ['LOGIN_FAILURE_LIMIT_PER_USERNAME', '-1'],
    ['SIGNUP_LIMIT_PER_IP', '1.5'],
    ['AUTH_LIMIT_WINDOW_SECONDS', '0'],
    ['WS_FRAME_LIMIT_PER_MINUTE', '-1'],
    ['WS_IDLE_TIMEOUT_SECONDS', '0'],
    ['WS_IDLE_TIMEOUT_SECONDS', '1000'],
    ['WS_PING_LIMIT_PER_MINUTE', '0'],
    ['WS_MAX_SOCKETS_PER_USER', '0'],
    ['WS_MAX_SOCKETS_PER_USER', 'many'],
    ['WS_SEND_BUFFER_BUDGET_MIB', '0'],
    ['WS_SEND_BUFFER_BUDGET_MIB', '1.5'],
    ['OTEL_TRACES_EXPORTER', 'jaeger'],
    ['OTEL_EXPORTER_OTLP_ENDPOINT', 'not a url'],
  ])('refuses %s=%s with an error naming the variable', (variable, value) => {
    expect(() => loadConfig({ [variable]: value })).toThrow(ConfigError)
    expect(() => loadConfig({ [variable]: value })).toThrow(variable)
  })
})

describe('REDIS_URL', () => {
  test('a URL that is refused is not echoed, as it may hold a password', () => {
    expect(() => loadConfig({ REDIS_URL: 'valkey://:hunter2@127.0.0.1:6379' })).toThrow('must be a redis:// or rediss:// URL')
    expect(() => loadConfig({ REDIS_URL: 'valkey://:hunter2@127.0.0.1:6379' })).not.toThrow('hunter2')
  })
})

describe('parseDatabaseUrl', () => {
  test.each([
    ['sqlite:./data/pneumatic.db', './data/pneumatic.db'],
    ['sqlite:/abs/chat.db', '/abs/chat.db'],
    ['sqlite:///abs/chat.db', '/abs/chat.db'],
    ['sqlite::memory:', ':memory:'],
    ['./relative.db', './relative.db'],
    ['/abs/bare.db', '/abs/bare.db'],
  ])('%s is the file %s', (url, path) => {
    expect(parseDatabaseUrl(url)).toEqual({ kind: 'sqlite', path })
  })

  test('an in-memory database has no data directory', () => {
    expect(loadConfig({ DATABASE_URL: 'sqlite::memory:' }).dataDir).toBeNull()
  })
})

describe('DATABASE_URL on PostgreSQL', () => {
  const SECRET = 'a-shared-secret-of-at-least-32-characters'

  test.each([
    'postgres://chat:s3cret@db.internal:5432/pneumatic',
    'postgresql://chat:s3cret@db.internal/pneumatic?sslmode=require',
    'POSTGRES://chat@127.0.0.1/pneumatic',
  ])('%s selects PostgreSQL with a pool of 10 by default, and no data directory', (url) => {
    const config = loadConfig({ DATABASE_URL: url, JWT_SECRET: SECRET })
    expect(config.database).toEqual({ kind: 'postgres', url, poolSize: 10 })
    expect(config.dataDir).toBeNull()
    expect(config.warnings).toEqual([])
  })

  test('DATABASE_POOL_SIZE sets the pool, from 1 to 1000', () => {
    const env = { DATABASE_URL: 'postgres://chat@db/pneumatic', JWT_SECRET: SECRET }
    expect(loadConfig({ ...env, DATABASE_POOL_SIZE: '1' }).database).toEqual({ kind: 'postgres', url: env.DATABASE_URL, poolSize: 1 })
    expect(loadConfig({ ...env, DATABASE_POOL_SIZE: ' 1000 ' }).database).toEqual({ kind: 'postgres', url: env.DATABASE_URL, poolSize: 1000 })
    expect(() => loadConfig({ ...env, DATABASE_POOL_SIZE: '0' })).toThrow('DATABASE_POOL_SIZE must be between 1 and 1000, got 0')
    expect(() => loadConfig({ ...env, DATABASE_POOL_SIZE: '2.5' })).toThrow('DATABASE_POOL_SIZE must be a whole number, got "2.5"')
  })

  test('PRESENCE_GRACE_SECONDS (0–3600) and PRESENCE_NODE_TIMEOUT_SECONDS (2–3600) are whole seconds, refused naming the variable otherwise', () => {
    expect(loadConfig({ PRESENCE_GRACE_SECONDS: '0', PRESENCE_NODE_TIMEOUT_SECONDS: '2' })).toMatchObject({ presenceGraceSeconds: 0, presenceNodeTimeoutSeconds: 2 })
    expect(loadConfig({ PRESENCE_GRACE_SECONDS: ' 3600 ', PRESENCE_NODE_TIMEOUT_SECONDS: '3600' })).toMatchObject({ presenceGraceSeconds: 3600, presenceNodeTimeoutSeconds: 3600 })
    expect(() => loadConfig({ PRESENCE_GRACE_SECONDS: '2.5' })).toThrow('Invalid configuration: PRESENCE_GRACE_SECONDS must be a whole number, got "2.5"')
    expect(() => loadConfig({ PRESENCE_GRACE_SECONDS: '-1' })).toThrow('Invalid configuration: PRESENCE_GRACE_SECONDS must be a whole number, got "-1"')
    expect(() => loadConfig({ PRESENCE_GRACE_SECONDS: '3601' })).toThrow('Invalid configuration: PRESENCE_GRACE_SECONDS must be between 0 and 3600, got 3601')
    expect(() => loadConfig({ PRESENCE_NODE_TIMEOUT_SECONDS: '1' })).toThrow('Invalid configuration: PRESENCE_NODE_TIMEOUT_SECONDS must be between 2 and 3600, got 1')
    expect(() => loadConfig({ PRESENCE_NODE_TIMEOUT_SECONDS: 'soon' })).toThrow('Invalid configuration: PRESENCE_NODE_TIMEOUT_SECONDS must be a whole number, got "soon"')
  })

  test('on SQLite, DATABASE_POOL_SIZE is checked but said to be unread', () => {
    expect(loadConfig({ DATABASE_POOL_SIZE: '4' }).warnings).toEqual(['DATABASE_POOL_SIZE (4) is read only on PostgreSQL: SQLite has one connection'])
    expect(loadConfig({}).warnings).toEqual([])
  })

  test('on PostgreSQL, JWT_SECRET must be set: nodes sharing the database must share the secret', () => {
    const refused = () => loadConfig({ DATABASE_URL: 'postgres://chat@db/pneumatic' })
    expect(refused).toThrow(ConfigError)
    expect(refused).toThrow(/^Invalid configuration: JWT_SECRET must be set when DATABASE_URL points to PostgreSQL/)
    expect(loadConfig({ DATABASE_URL: 'sqlite::memory:' }).jwtSecret).toBeNull()
  })

  test('on PostgreSQL, MESSAGE_WRITER=worker is refused; inline is the default and allowed', () => {
    const env = { DATABASE_URL: 'postgres://chat@db/pneumatic', JWT_SECRET: SECRET }
    expect(() => loadConfig({ ...env, MESSAGE_WRITER: 'worker' })).toThrow(/^Invalid configuration: MESSAGE_WRITER must be inline on PostgreSQL/)
    expect(loadConfig({ ...env, MESSAGE_WRITER: 'inline' }).messageWriter).toBe('inline')
    expect(loadConfig(env).messageWriter).toBe('inline')
    expect(loadConfig({ DATABASE_URL: 'sqlite::memory:', MESSAGE_WRITER: 'worker' }).messageWriter).toBe('worker')
  })

  test('a postgres URL that does not parse is refused without being echoed, as it may hold a password', () => {
    const refused = () => loadConfig({ DATABASE_URL: 'postgres://chat:hunter2@db:port/pneumatic', JWT_SECRET: SECRET })
    expect(refused).toThrow('DATABASE_URL is not a valid postgres:// URL')
    let message = ''
    try {
      refused()
    } catch (error) {
      message = (error as Error).message
    }
    expect(message).not.toContain('hunter2')
  })

  test('the unsupported-scheme error names PostgreSQL among the choices', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://localhost/chat' })).toThrow('postgres://user:password@host:port/database')
  })
})
