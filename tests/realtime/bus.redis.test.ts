import { describe, expect, test } from 'bun:test'
import { ConfigError } from '../../src/config'
import { createRedisBus, EVENTS_CHANNEL, type RedisBus } from '../../src/realtime/bus.redis'
import type { DomainEvent } from '../../src/shared/events'
import { captureLogs } from '../support/app'
import { type RedisServer, startRedis } from '../support/redis'

function event(content: string): DomainEvent {
  return {
    type: 'conversation.changed',
    change: {
      type: 'message',
      conversation_id: 'c',
      event_seq: 1,
      message: { id: content, message_id: content, sender_id: 'u', conversation_id: 'c', content, created_at: '2026-01-01T00:00:00.000Z', seq: 1, edited_at: null, deleted_at: null, reply_to: null, reactions: [] },
    },
  }
}

const contentOf = (e: DomainEvent) => (e.type === 'conversation.changed' && e.change.type === 'message' ? e.change.message.content : e.type)

/** Events a bus delivers, and a promise for the first one with a given content. */
function received(bus: RedisBus) {
  const seen: string[] = []
  const waiters = new Map<string, () => void>()
  bus.subscribe((e) => {
    seen.push(contentOf(e))
    waiters.get(contentOf(e))?.()
  })
  return {
    seen,
    arrival(content: string): Promise<void> {
      if (seen.includes(content)) return Promise.resolve()
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`"${content}" did not arrive within 5 s`)), 5000)
        waiters.set(content, () => (clearTimeout(timer), resolve()))
      })
    },
  }
}

async function bus(redis: RedisServer, logger = captureLogs().logger): Promise<RedisBus & AsyncDisposable> {
  const created = await createRedisBus(redis.url, {
    onError: (error) => {
      throw error
    },
    logger,
  })
  return Object.assign(created, { [Symbol.asyncDispose]: () => created.close() })
}

/** Polls (bounded) until the server counts `count` subscribers on the events channel. */
async function subscribersBecome(redis: RedisServer, count: number): Promise<number> {
  let now = -1
  for (let attempt = 0; attempt < 250; attempt++) {
    now = Number((await redis.cli('PUBSUB', 'NUMSUB', EVENTS_CHANNEL)).split('\n')[1])
    if (now === count) break
    await Bun.sleep(20)
  }
  return now
}

describe('createRedisBus', () => {
  test("delivers an event published in one process to another process's subscribers", async () => {
    await using redis = await startRedis()
    await using a = await bus(redis)
    await using b = await bus(redis)
    const atB = received(b)
    a.publish(event('hello'))
    await atB.arrival('hello')
    expect(atB.seen).toEqual(['hello'])
  })

  test('delivers its own events to its subscribers at once, and not a second time when Redis echoes them', async () => {
    await using redis = await startRedis()
    await using a = await bus(redis)
    await using b = await bus(redis)
    const atA = received(a)
    const atB = received(b)
    a.publish(event('from a'))
    expect(atA.seen).toEqual(['from a'])
    // Redis sends a PUBLISH to every subscriber before the next command: once B has "from a", A's
    // echo of it is on A's connection ahead of "from b".
    await atB.arrival('from a')
    b.publish(event('from b'))
    await atA.arrival('from b')
    expect(atA.seen).toEqual(['from a', 'from b'])
    expect(atB.seen).toEqual(['from a', 'from b'])
  })

  test('stops delivering to a listener after it unsubscribes', async () => {
    await using redis = await startRedis()
    await using a = await bus(redis)
    await using b = await bus(redis)
    const gone: DomainEvent[] = []
    const unsubscribe = b.subscribe((e) => gone.push(e))
    const atB = received(b)
    unsubscribe()
    a.publish(event('after unsubscribe'))
    await atB.arrival('after unsubscribe')
    expect(gone).toEqual([])
  })

  test('a failing listener neither fails the publisher nor starves the others', async () => {
    await using redis = await startRedis()
    const errors: unknown[] = []
    await using a = await bus(redis)
    const b = await createRedisBus(redis.url, { onError: (error) => errors.push(error) })
    try {
      b.subscribe(() => {
        throw new Error('boom')
      })
      const atB = received(b)
      a.publish(event('to b'))
      await atB.arrival('to b')
      expect(() => b.publish(event('from b'))).not.toThrow()
      expect(atB.seen).toEqual(['to b', 'from b'])
      expect(errors).toEqual([new Error('boom'), new Error('boom')])
    } finally {
      await b.close()
    }
  })

  test('publishing while Redis is down does not throw: the event is delivered locally, logged and counted', async () => {
    await using redis = await startRedis()
    const logs = captureLogs()
    await using a = await bus(redis, logs.logger)
    const atA = received(a)
    await redis.stop()
    expect(() => a.publish(event('while down'))).not.toThrow()
    expect(atA.seen).toEqual(['while down'])
    await logs.waitFor((l) => l.msg === 'redis bus: an event could not be published; other nodes are told to read it once Redis takes a publish again')
    expect(a.publishFailures).toBe(1)
  })

  test('re-subscribes after its connection is killed, tells onInterruption, and delivers what is published after', async () => {
    await using redis = await startRedis()
    await using a = await bus(redis)
    await using b = await bus(redis)
    const atB = received(b)
    let interruptions = 0
    const interrupted = new Promise<void>((resolve) => b.onInterruption(() => (interruptions++, resolve())))

    // Both buses' subscriber connections are killed; both come back.
    expect(await redis.cli('CLIENT', 'KILL', 'TYPE', 'pubsub')).toBe('2')
    await interrupted
    expect(await subscribersBecome(redis, 2)).toBe(2)
    a.publish(event('after the kill'))
    await atB.arrival('after the kill')
    expect(interruptions).toBe(1)
  })

  test('re-subscribes after Redis restarts, tells onInterruption, and both publishing and delivery resume', async () => {
    await using redis = await startRedis()
    await using a = await bus(redis)
    await using b = await bus(redis)
    const atB = received(b)
    const interrupted = Promise.all([a, b].map((x) => new Promise<void>((resolve) => x.onInterruption(resolve))))

    await redis.restart()
    await interrupted
    // The publisher reconnects on its own schedule: publish until one gets through, a bounded number of times.
    for (let attempt = 0; attempt < 250 && !atB.seen.includes('after the restart'); attempt++) {
      a.publish(event('after the restart'))
      await Promise.race([atB.arrival('after the restart').catch(() => {}), Bun.sleep(20)])
    }
    expect(atB.seen).toContain('after the restart')
  })

  test('a process that could not publish tells the others once its connection is back, so they read what they missed', async () => {
    await using redis = await startRedis()
    const logsA = captureLogs()
    const logs = captureLogs()
    await using a = await bus(redis, logsA.logger)
    await using b = await bus(redis, logs.logger)
    const atB = received(b)
    let interruptions = 0
    const interrupted = new Promise<void>((resolve) => b.onInterruption(() => (interruptions++, resolve())))

    // Only A's publishing connection breaks: B's subscriber never notices, and the event A fails
    // to publish meanwhile is lost to B unless A says so.
    const id = await a.commands.client('ID')
    const broken = new Promise<void>((resolve) => a.commands.once('close', resolve))
    await redis.cli('CLIENT', 'KILL', 'ID', String(id))
    await broken
    a.publish(event('lost'))
    await logsA.waitFor((l) => l.msg === 'redis bus: an event could not be published; other nodes are told to read it once Redis takes a publish again')
    expect(a.publishFailures).toBe(1)
    // Bounded: the line comes within 5 s or the test fails; the interruption is told right after it.
    await logs.waitFor((l) => l.msg === 'redis bus: another node could not publish some events: reading what they may have been')
    await interrupted
    expect(atB.seen).toEqual([])
    expect(interruptions).toBe(1)

    // Told once: the next event is delivered as usual, and no further interruption follows it.
    a.publish(event('after'))
    await atB.arrival('after')
    expect(interruptions).toBe(1)
  })

  test('close() leaves the channel and ends both connections', async () => {
    await using redis = await startRedis()
    await using _stays = await bus(redis)
    const b = await bus(redis)
    expect(await subscribersBecome(redis, 2)).toBe(2)
    await b.close()
    expect(await subscribersBecome(redis, 1)).toBe(1)
    await b.close() // twice is harmless
  })

  test('start-up refuses a Redis that cannot be reached, naming REDIS_URL without its password', async () => {
    await using redis = await startRedis()
    await redis.stop()
    const url = `redis://:hunter2-secret@127.0.0.1:${redis.port}`
    const error = await createRedisBus(url, { onError: () => {} }).then(
      () => null,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).message).toStartWith(`Invalid configuration: REDIS_URL cannot be reached at redis://:***@127.0.0.1:${redis.port}`)
    expect((error as ConfigError).message).not.toContain('hunter2')
  })
})
