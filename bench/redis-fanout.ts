/**
 * bun bench/redis-fanout.ts [--rate=5000] [--seconds=4]
 *
 * What Redis, and a node hearing it, spend per event as the number of nodes on Pneumatic's one
 * channel grows: the figures behind docs/scaling.md's arithmetic for Redis. Not part of
 * `bun run bench`: it reports absolute figures, not a ratio, and runs no Pneumatic server.
 *
 * A redis-server of its own (tests/support/redis.ts), pinned to core 1. In this process (core 0):
 * N subscriber connections on the events channel, each an ioredis client that parses every
 * message as JSON and skips it, which is what a node's bus does with an event (src/realtime/
 * bus.redis.ts) before its gateway looks at it; and one publisher connection sending the envelope
 * of a message event (a 20-character message, as the bench sends) at a fixed rate, in bursts
 * each millisecond as a node publishes after each commit. For N = 0, 1, 2, 5, 10, 20: Redis's CPU
 * per event published (its own idle CPU over the same time subtracted); this process's CPU per
 * event published with no subscriber (what a node's publish costs it); and, from N = 1, this
 * process's CPU less that, per event heard by one subscriber (what hearing an event costs a node).
 * Every round waits (at most 10 s) until each subscriber has every event.
 */
import Redis from 'ioredis'
import { startRedis } from '../tests/support/redis'
import { EVENTS_CHANNEL } from '../src/realtime/bus.redis'
import { canPin, cpuSeconds, fmt, pinLoadGenerator } from './lib'

const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback)
const RATE = arg('rate', 5_000)
const SECONDS = arg('seconds', 4)
const SUBSCRIBERS = [0, 1, 2, 5, 10, 20]

pinLoadGenerator()
const envelope = (k: number) =>
  JSON.stringify({
    origin: crypto.randomUUID(),
    event: {
      type: 'message.created',
      message: {
        id: Bun.randomUUIDv7(),
        message_id: Bun.randomUUIDv7(),
        sender_id: Bun.randomUUIDv7(),
        conversation_id: Bun.randomUUIDv7(),
        content: 'hello from the bench',
        created_at: new Date().toISOString(),
        seq: k + 1,
      },
    },
  })

await using redis = await startRedis()
const redisPid = Number(/process_id:(\d+)/.exec(await redis.cli('INFO', 'server'))?.[1])
if (canPin) Bun.spawnSync(['taskset', '-a', '-cp', '1', String(redisPid)])
console.log(`redis-server ${redis.url}${canPin ? ', pinned to core 1, this process on core 0' : ''}; ${fmt(RATE)} events/s for ${SECONDS} s per round`)
console.log('\n| nodes subscribed | events | Redis CPU per event | Redis CPU per event and subscriber, above none | publisher CPU per event | a subscriber\'s CPU per event heard |')
console.log('| --- | --- | --- | --- | --- | --- |')

const publisher = new Redis(redis.url)
const total = Math.round(RATE * SECONDS)
const payloads = Array.from({ length: total }, (_, k) => envelope(k))
let redisAlone = 0
let publisherAlone = 0
for (const n of SUBSCRIBERS) {
  const subscribers = Array.from({ length: n }, () => new Redis(redis.url))
  let heard = 0
  for (const subscriber of subscribers) {
    subscriber.on('message', (_channel: string, text: string) => {
      const { origin } = JSON.parse(text) as { origin: string }
      if (origin) heard++
    })
    await subscriber.subscribe(EVENTS_CHANNEL)
  }
  // Redis idle with these connections, over as long as a round: subtracted from the round.
  const idleBefore = cpuSeconds(redisPid)
  await Bun.sleep(SECONDS * 1000)
  const idle = cpuSeconds(redisPid) - idleBefore

  const redisBefore = cpuSeconds(redisPid)
  const ownBefore = process.cpuUsage()
  const t0 = performance.now()
  let sent = 0
  while (sent < total && performance.now() - t0 < SECONDS * 1000 + 5_000) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * RATE) + 1)
    for (; sent < due; sent++) void publisher.publish(EVENTS_CHANNEL, payloads[sent]!)
    await Bun.sleep(1)
  }
  const deadline = performance.now() + 10_000
  while (heard < sent * n && performance.now() < deadline) await Bun.sleep(5)
  const redisCpu = cpuSeconds(redisPid) - redisBefore - idle
  const own = process.cpuUsage(ownBefore)
  if (heard < sent * n) console.log(`  warning: ${sent * n - heard} events not heard within 10 s`)
  const perEvent = (redisCpu / sent) * 1e6
  const ownPerEvent = (own.user + own.system) / sent // microseconds
  if (n === 0) [redisAlone, publisherAlone] = [perEvent, ownPerEvent]
  const perSubscriber = (x: number) => (n === 0 ? '—' : `${fmt(x / n)} µs`)
  console.log(`| ${n} | ${fmt(sent)} | ${fmt(perEvent)} µs | ${perSubscriber(perEvent - redisAlone)} | ${fmt(publisherAlone)} µs | ${perSubscriber(ownPerEvent - publisherAlone)} |`)
  await Promise.all(subscribers.map((s) => s.quit()))
}
await publisher.quit()
