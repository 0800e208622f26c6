import { createApp, stopGracefully } from './app'
import { resolveJwtSecret } from './auth/secret'
import { createAuthThrottle } from './auth/throttle'
import { createTokens } from './auth/tokens'
import { ConfigError, loadConfig, maskedUrl } from './config'
import { openStore } from './db/store'
import { createMessageWriter } from './messages/writer'
import { watchFileDescriptors } from './observability/descriptors'
import { createLogger, stdoutDestination } from './observability/logger'
import { createMetrics } from './observability/metrics'
import { startTracing } from './observability/tracing'
import { createLocalBus } from './realtime/bus'
import { createRedisBus } from './realtime/bus.redis'
import { memoryLimits, redisLimits } from './limits/counters'
import { memoryPresence } from './presence/store.memory'
import { redisPresence } from './presence/store.redis'

/** Configuration that cannot work stops the server with one line naming the variable, not a stack trace. */
async function orExit<T>(make: () => T | Promise<T>): Promise<T> {
  try {
    return await make()
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    console.error(error.message)
    process.exit(1)
  }
}

const config = await orExit(loadConfig)

const stdout = stdoutDestination()
const logger = createLogger(config.logLevel, stdout)
for (const warning of config.warnings) logger.warn(warning)
const tracing = startTracing(config.tracing)
const store = await orExit(() => openStore(config.database, { messageWriter: config.messageWriter }))
const writer = createMessageWriter(store)
const tokens = createTokens({
  secret: resolveJwtSecret(config, logger),
  accessTtlSeconds: config.accessTokenTtlSeconds,
  refreshTtlSeconds: config.refreshTokenTtlSeconds,
})
const onListenerError = (error: unknown) => logger.error({ err: error }, 'event listener failed')
// With REDIS_URL, events cross nodes; a Redis that cannot be reached at start-up stops the server.
const redisUrl = config.redisUrl
const metrics = createMetrics()
const redisBus = redisUrl ? await orExit(() => createRedisBus(redisUrl, { onError: onListenerError, logger, onPublishFailure: () => metrics.busPublishFailed() })) : null
const bus = redisBus ?? createLocalBus(onListenerError)
const limits = redisBus ? redisLimits(redisBus.commands) : memoryLimits
const presence = redisBus ? redisPresence(redisBus.commands, { nodeTimeoutSeconds: config.presenceNodeTimeoutSeconds, logger }) : memoryPresence()

const app = createApp({ config, store, writer, tokens, bus, limits, presence, logger, metrics, authThrottle: createAuthThrottle(config, limits) }).listen({ port: config.port, hostname: config.host })
logger.info({ url: `http://${config.host}:${app.server!.port}`, database: config.database.kind === 'sqlite' ? config.database.path : maskedUrl(config.database.url), bus: redisUrl ? maskedUrl(redisUrl) : 'local' }, 'pneumatic listening')
const stopWatchingDescriptors = watchFileDescriptors(logger)

let stopping = false
async function shutdown(signal: string) {
  if (stopping) return
  stopping = true
  logger.info({ signal }, 'shutting down')
  stopWatchingDescriptors()
  await stopGracefully(app)
  await writer.close()
  await redisBus?.close()
  await store.close()
  await tracing?.shutdown()
  await stdout.flush()
  process.exit(0)
}
process.on('SIGINT', () => void shutdown('SIGINT'))
process.on('SIGTERM', () => void shutdown('SIGTERM'))
