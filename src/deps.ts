import type { AuthThrottle } from './auth/throttle'
import type { Tokens } from './auth/tokens'
import type { Config } from './config'
import type { Store } from './db/store'
import type { MessageWriter } from './messages/writer'
import type { Logger } from './observability/logger'
import type { Metrics } from './observability/metrics'
import type { Bus } from './realtime/bus'
import type { Limits } from './limits/counters'
import type { PresenceStore } from './presence/store'

/** Everything the app is built from; main.ts makes the real ones, tests make their own. */
export type AppDeps = {
  config: Config
  /** Every query, and readiness and query timings, for either engine (db/store.ts). */
  store: Store
  /** Commits messages in batches (group commit): inline, or in a worker (MESSAGE_WRITER). */
  writer: MessageWriter
  tokens: Tokens
  /** Failed logins and signups, counted against guessing (auth/throttle.ts). */
  authThrottle: AuthThrottle
  bus: Bus
  /** Where rate-limit counts live: this process, or Redis for every node (limits/counters.ts). */
  limits: Limits
  /** Who is online: this process's memory, or Redis for every node (presence/store.ts). */
  presence: PresenceStore
  logger: Logger
  metrics: Metrics
}
