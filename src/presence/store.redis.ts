import type Redis from 'ioredis'
import type { Logger } from '../observability/logger'
import type { Departure, PresenceStore } from './store'

/** Where presence lives in Redis (apart from the bus's channel and the rate limits' keys). */
const PRESENCE_PREFIX = 'pneumatic:presence:'

/** Departures handed out by one sweep at most; the rest go to the next. */
const SWEEP_LIMIT = 1000

/*
 * The keys, under PRESENCE_PREFIX:
 *   nodes           hash   node id → its last beat (Redis time, ms)
 *   node:<node>     set    the users with a socket on that node
 *   user:<user>     set    the nodes where that user has a socket
 *   online          set    the users announced online (and not yet announced offline)
 *   leaving         zset   user → when their last socket went (ms), while none is open: due after the grace
 * Every script runs whole, so two nodes never hand out the same departure, and reads Redis's clock,
 * so the nodes' clocks never need to agree. A user's socket counts only on a node that beat within
 * the timeout: a node killed outright stops beating, and the next sweep anywhere takes its users'
 * sockets for gone, as of its last beat. Keys are built inside the scripts (a user's key is only
 * known there): a single Redis, not Redis Cluster.
 */
const COMMON = `
local p = ARGV[1]
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function live(user, at, timeout)
  local count = 0
  for _, node in ipairs(redis.call('SMEMBERS', p .. 'user:' .. user)) do
    local beat = redis.call('HGET', p .. 'nodes', node)
    if beat and at - tonumber(beat) <= timeout then count = count + 1 end
  end
  return count
end
-- The user's sockets on the node went at \`since\`: leaving then, unless they have some elsewhere.
local function drop(node, user, at, timeout, since)
  redis.call('SREM', p .. 'user:' .. user, node)
  redis.call('SREM', p .. 'node:' .. node, user)
  if live(user, at, timeout) == 0 then redis.call('ZADD', p .. 'leaving', 'GT', since, user) end
end
local function arrive(node, user)
  redis.call('SADD', p .. 'user:' .. user, node)
  redis.call('SADD', p .. 'node:' .. node, user)
  redis.call('ZREM', p .. 'leaving', user)
  return redis.call('SADD', p .. 'online', user)
end
`

/** ARGV: prefix, node, user → 1 when the user was not online. */
const ARRIVED = `${COMMON}
return arrive(ARGV[2], ARGV[3])`

/** ARGV: prefix, node, user, timeout. */
const LEFT = `${COMMON}
local at = clock()
drop(ARGV[2], ARGV[3], at, tonumber(ARGV[4]), at)
return 0`

/** ARGV: prefix, node, grace, timeout, limit → { lost (0/1), { user, at, user, at, … } }. */
const SWEEP = `${COMMON}
local node, grace, timeout = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local at = clock()
local nodes = p .. 'nodes'
local lost = redis.call('HEXISTS', nodes, node) == 0
redis.call('HSET', nodes, node, at)
local beats = redis.call('HGETALL', nodes)
for i = 1, #beats, 2 do
  local other, beat = beats[i], tonumber(beats[i + 1])
  if at - beat > timeout then
    for _, user in ipairs(redis.call('SMEMBERS', p .. 'node:' .. other)) do drop(other, user, at, timeout, beat) end
    redis.call('DEL', p .. 'node:' .. other)
    redis.call('HDEL', nodes, other)
  end
end
local departed = {}
local leaving = p .. 'leaving'
local due = redis.call('ZRANGEBYSCORE', leaving, '-inf', at - grace, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[5]))
for i = 1, #due, 2 do
  local user = due[i]
  redis.call('ZREM', leaving, user)
  if live(user, at, timeout) == 0 and redis.call('SREM', p .. 'online', user) == 1 then
    departed[#departed + 1] = user
    departed[#departed + 1] = due[i + 1]
  end
end
return { lost and 1 or 0, departed }`

/** ARGV: prefix, node, timeout, users… → the users it made online. */
const RESYNC = `${COMMON}
local node, timeout = ARGV[2], tonumber(ARGV[3])
local at = clock()
local keep = {}
for i = 4, #ARGV do keep[ARGV[i]] = true end
for _, user in ipairs(redis.call('SMEMBERS', p .. 'node:' .. node)) do
  if not keep[user] then drop(node, user, at, timeout, at) end
end
local arrived = {}
for i = 4, #ARGV do
  if arrive(node, ARGV[i]) == 1 then arrived[#arrived + 1] = ARGV[i] end
end
return arrived`

type Scripts = {
  presenceArrived(...args: string[]): Promise<number>
  presenceLeft(...args: string[]): Promise<number>
  presenceSweep(...args: string[]): Promise<[number, string[]]>
  presenceResync(...args: string[]): Promise<string[]>
}

export type RedisPresenceOptions = {
  /** A node that has not beaten for this long is taken for gone, with its sockets (PRESENCE_NODE_TIMEOUT_SECONDS). */
  nodeTimeoutSeconds: number
  logger: Pick<Logger, 'warn'>
}

/**
 * Presence shared by every node through Redis (see the keys above), over the connection the bus
 * publishes on: it fails at once while Redis is down, and the caller says it all again (resync)
 * once it is back. Each node is a random id, new at each start.
 */
export function redisPresence(client: Redis, options: RedisPresenceOptions): PresenceStore {
  const node = crypto.randomUUID()
  const timeout = String(options.nodeTimeoutSeconds * 1000)
  const p = PRESENCE_PREFIX
  client.defineCommand('presenceArrived', { numberOfKeys: 0, lua: ARRIVED })
  client.defineCommand('presenceLeft', { numberOfKeys: 0, lua: LEFT })
  client.defineCommand('presenceSweep', { numberOfKeys: 0, lua: SWEEP })
  client.defineCommand('presenceResync', { numberOfKeys: 0, lua: RESYNC })
  const scripts = client as unknown as Scripts

  return {
    async arrived(userId) {
      return (await scripts.presenceArrived(p, node, userId)) === 1
    },
    async left(userId) {
      await scripts.presenceLeft(p, node, userId, timeout)
    },
    async sweep(graceMs) {
      const [lost, flat] = await scripts.presenceSweep(p, node, String(graceMs), timeout, String(SWEEP_LIMIT))
      const departed: Departure[] = []
      for (let i = 0; i < flat.length; i += 2) departed.push({ userId: flat[i]!, lastSeenAt: Number(flat[i + 1]) })
      return { departed, lost: lost === 1 }
    },
    resync(userIds) {
      return scripts.presenceResync(p, node, timeout, ...userIds)
    },
    async onlineAmong(userIds) {
      if (userIds.length === 0) return new Set()
      try {
        const flags = await client.smismember(`${p}online`, ...userIds)
        return new Set(userIds.filter((_, i) => flags[i] === 1))
      } catch (error) {
        // Who is online is not worth failing a request for: everyone is shown offline meanwhile.
        options.logger.warn({ err: error }, 'presence: Redis could not say who is online')
        return new Set()
      }
    },
  }
}
