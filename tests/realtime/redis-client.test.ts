import { describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { type RedisServer, startRedis } from '../support/redis'

/**
 * Why the bus uses ioredis: a subscriber must come back by itself after its connection is killed
 * and after Redis restarts, and receive what is published once it is back. Each candidate client
 * goes in `candidates`; the commit that chose ioredis says what Bun's RedisClient and node-redis did.
 */

const CHANNEL = 'pneumatic:client-test'

type Candidate = {
  /** A dedicated subscriber connection on CHANNEL; resolves once subscribed. */
  subscriber(url: string, onMessage: (message: string) => void): Promise<{ close(): Promise<void> | void }>
  publisher(url: string): Promise<{ publish(message: string): Promise<unknown>; close(): Promise<void> | void }>
}

const candidates: Record<string, Candidate> = {
  ioredis: {
    async subscriber(url, onMessage) {
      const client = new Redis(url)
      client.on('error', () => {})
      client.on('message', (_channel: string, message: string) => onMessage(message))
      await client.subscribe(CHANNEL)
      return { close: () => client.disconnect() }
    },
    async publisher(url) {
      const client = new Redis(url)
      client.on('error', () => {})
      return { publish: (message) => client.publish(CHANNEL, message), close: () => client.disconnect() }
    },
  },
}

/** Subscribers on CHANNEL, as the server counts them (0 while Redis is down). */
async function subscribers(redis: RedisServer): Promise<number> {
  const output = await redis.cli('PUBSUB', 'NUMSUB', CHANNEL)
  return Number(output.split('\n')[1] ?? 0)
}

/**
 * Polls until the server counts a subscriber on CHANNEL again, for at most `seconds`: nothing the
 * client does tells every candidate's caller that it re-subscribed, so the server is asked.
 */
async function resubscribed(redis: RedisServer, seconds: number): Promise<boolean> {
  const deadline = Date.now() + seconds * 1000
  while (Date.now() < deadline) {
    if ((await subscribers(redis)) > 0) return true
    await Bun.sleep(20)
  }
  return false
}

/** Numbered messages as they arrive; `until(n)` resolves when message n has, or false after a bound. */
function inbox() {
  const received: number[] = []
  const waiters = new Map<number, () => void>()
  return {
    received,
    onMessage(message: string) {
      const n = Number(message)
      received.push(n)
      waiters.get(n)?.()
      waiters.delete(n)
    },
    until(n: number, ms = 5000): Promise<boolean> {
      if (received.includes(n)) return Promise.resolve(true)
      return new Promise((resolve) => {
        const timer = setTimeout(() => (waiters.delete(n), resolve(false)), ms)
        waiters.set(n, () => (clearTimeout(timer), resolve(true)))
      })
    },
  }
}

/**
 * Publishes messages from..to (in order, one after another) and waits for the last: the stream the
 * subscriber must see whole once it is back.
 */
async function stream(publish: (message: string) => Promise<unknown>, box: ReturnType<typeof inbox>, from: number, to: number): Promise<number[]> {
  for (let n = from; n <= to; n++) await publish(String(n))
  await box.until(to)
  return box.received.filter((n) => n >= from && n <= to)
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i)
}

async function interruptedStream(candidate: Candidate) {
  await using redis = await startRedis()
  const box = inbox()
  const subscriber = await candidate.subscriber(redis.url, box.onMessage)
  const publisher = await candidate.publisher(redis.url)
  try {
    const before = await stream(publisher.publish, box, 1, 10)

    expect(await redis.cli('CLIENT', 'KILL', 'TYPE', 'pubsub')).toBe('1')
    const backAfterKill = await resubscribed(redis, 10)
    const afterKill = backAfterKill ? await stream(publisher.publish, box, 11, 20) : []

    await redis.restart()
    const backAfterRestart = await resubscribed(redis, 10)
    const afterRestart = backAfterRestart ? await stream(publisher.publish, box, 21, 30) : []

    return { before, backAfterKill, afterKill, backAfterRestart, afterRestart }
  } finally {
    await publisher.close()
    await subscriber.close()
  }
}

describe('a Redis subscriber, its connection killed and Redis restarted mid-stream', () => {
  for (const [name, candidate] of Object.entries(candidates)) {
    test(`${name} re-subscribes by itself and receives what is published after each interruption`, async () => {
      const result = await interruptedStream(candidate)
      expect(result).toEqual({
        before: range(1, 10),
        backAfterKill: true,
        afterKill: range(11, 20),
        backAfterRestart: true,
        afterRestart: range(21, 30),
      })
    }, 40_000)
  }
})
