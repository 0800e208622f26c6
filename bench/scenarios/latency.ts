/**
 * Latency: two members of a conversation, one socket each, taking turns to send; every message is
 * persisted, then delivered to both (the sender's copy is its ack; the other's is the sample).
 *
 * First a closed-loop probe finds Pneumatic's maximum rate on this very setup (each socket keeps
 * 32 messages in flight, for one round's length). Then an open loop at 25%, 50% and 75% of it:
 * sends on a fixed timetable, latency from each message's scheduled send time to its arrival at
 * the other socket (see openLoop), p50 and p99 from an HDR histogram, for Pneumatic and for the
 * bare chat server at the same rate; the ratio is Pneumatic's over the bare server's (lower is
 * better).
 *
 * A round whose p99 is over 10 ms (twice the target) is named in the warnings with what it saw:
 * how far the load generator fell behind its own timetable, and, for Pneumatic, how many of its
 * commits (its own pneumatic_db_transaction_duration_seconds) took over 10 ms. On the 2-core VM
 * this was written on, such rounds were traced (perf sched) to two causes, about equally often:
 * the load generator preempted for 12–30 ms by another program on its core (the messages it then
 * sends at once go through Pneumatic in full batches, 256 messages and 5–15 ms a commit, so over
 * 1% of the round is late, while the bare server echoes the burst at once); or one or a few
 * commits waiting 10–50 ms for their fsync with the server off the CPU.
 *
 * Why not the 32-member fan-out setup: at even 25% of its maximum the load generator has to take
 * in over 100,000 frames a second on its one core, and its own queueing, not the server's, sets
 * the latency (the bare server's p99 there is tens of milliseconds too).
 */
import { closedLoop, openLoop, type Peer } from '../chat'
import type { ChatContext } from '../fixtures'
import { closeSockets, compareMany, fmt, openSockets, spawnBaseline, stop, warn, type Result, type Side } from '../lib'

const FRACTIONS = [0.25, 0.5, 0.75]
const PROBE_WINDOW = 32
/** A round with a p99 over this is an outlier, explained in the warnings. */
const OUTLIER_MS = 10

type Buckets = Map<number, number> // upper bound in seconds (Infinity for +Inf) → cumulative count

/** The server's transaction-duration histogram, as Prometheus exposes it. */
async function commitDurations(base: string): Promise<Buckets> {
  const text = await (await fetch(`${base}/metrics`)).text()
  const buckets: Buckets = new Map()
  for (const [, le, count] of text.matchAll(/^pneumatic_db_transaction_duration_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)) {
    buckets.set(le === '+Inf' ? Infinity : Number(le), Number(count))
  }
  return buckets
}

/** Between two readings: how many transactions took over `seconds`, and the bound the longest stayed under. */
function slowCommits(before: Buckets, after: Buckets, seconds: number): { slow: number; longestUnder: number } {
  const delta = (le: number) => (after.get(le) ?? 0) - (before.get(le) ?? 0)
  const total = delta(Infinity)
  const bounds = [...after.keys()].sort((a, b) => a - b)
  return { slow: total - delta(seconds), longestUnder: bounds.find((le) => delta(le) === total) ?? Infinity }
}

export async function latency({ server, fixture, tokens }: ChatContext): Promise<Result[]> {
  const bare = await spawnBaseline('bare-chat.ts')
  const opened: WebSocket[] = []
  try {
    const pair = (sockets: WebSocket[]): Peer[] => (opened.push(...sockets), sockets.map((ws) => ({ ws, conversationId: fixture.pair })))
    const pnPair = pair(await openSockets([0, 1].map((u) => `${server.ws}?token=${tokens[u]}`)))
    const barePair = pair(await openSockets([0, 1].map(() => `${bare.url}/?conversation=${fixture.pair}`)))

    const probe = await closedLoop(pnPair, pnPair.length, PROBE_WINDOW)
    if (probe.errors || probe.closed || !probe.messages) throw new Error(`latency probe failed: ${JSON.stringify(probe)}`)
    const maxRate = probe.messages
    console.log(`  probe: Pneumatic's maximum on this setup is ${fmt(maxRate)} msg/s`)

    const results: Result[] = []
    for (const fraction of FRACTIONS) {
      const rate = maxRate * fraction
      const side = (name: string, pid: () => number, peers: Peer[], metricsBase?: string): Side<{ p50: number; p99: number }> => ({
        name,
        pid,
        measure: async () => {
          const before = metricsBase ? await commitDurations(metricsBase) : undefined
          const result = await openLoop(peers, rate)
          if (result.missing || result.errors) warn(`latency at ${fmt(rate)} msg/s (${name}): ${result.missing} deliveries missing, ${result.errors} error frames`)
          if (result.p99 > OUTLIER_MS) {
            let commits = ''
            if (metricsBase) {
              const { slow, longestUnder } = slowCommits(before!, await commitDurations(metricsBase), OUTLIER_MS / 1000)
              commits = `; ${slow || 'none'} of its commits took over ${OUTLIER_MS} ms${slow ? ` (the longest under ${longestUnder * 1000} ms)` : ''}`
            }
            warn(`latency at ${fmt(rate)} msg/s (${name}): a round's p99 was ${fmt(result.p99)} ms; the load generator fell up to ${fmt(result.behind)} ms behind its timetable${commits}`)
          }
          return result
        },
      })
      const at = `at ${fraction * 100}% of max (${fmt(rate)} msg/s)`
      const atHalf = fraction === 0.5
      const note = `open loop, 1 sender → 1 receiver; max ${fmt(maxRate)} msg/s from a closed-loop probe (${PROBE_WINDOW} in flight per socket)`
      results.push(
        ...(await compareMany(
          {
            p50: { scenario: `send→receive p50 ${at}`, unit: 'ms', target: '—', met: () => null, note },
            p99: { scenario: `send→receive p99 ${at}`, unit: 'ms', target: atHalf ? '≤ 5 ms' : '—', met: atHalf ? (pn) => pn <= 5 : () => null, note },
          },
          side('pneumatic', () => server.process.pid, pnPair, server.base),
          side('bare Bun.serve pub/sub', () => bare.child.pid, barePair),
        )),
      )
    }
    return results
  } finally {
    await closeSockets(opened)
    await stop(bare.child)
  }
}
