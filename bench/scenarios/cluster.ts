/**
 * Two nodes against one (issue 16): two Pneumatic processes on one PostgreSQL database and one
 * Redis, against one process on the same engine, on the same machine, in the same run, rounds
 * alternated as everywhere else; every row is a ratio, two nodes over one node.
 *
 * Each side is a deployment of its own: a fresh database on the machine's PostgreSQL
 * (127.0.0.1:5432, dropped at the end), its own `redis-server` on a free port (started as the
 * tests start theirs, tests/support/redis.ts), DATABASE_POOL_SIZE=10 per node (as docs/scaling.md
 * has each node configured), the bench's usual environment (rate limits off, so no limit is
 * counted in Redis), and its fixture through the API (bench/fixtures.ts, apiClusterFixture). The
 * one node has REDIS_URL set too: it is the first node of a cluster, publishing every event to
 * Redis (and reading its own back, which it skips) as the two nodes do, so the ratios show what a
 * second node costs, the hop between nodes and sequencing across them, not what Redis costs a
 * lone node; what REDIS_URL itself costs a lone node has two rows of its own, against a third
 * deployment: one node without REDIS_URL (its events stay in the process). Deployments rather
 * than parts of one: an idle node hears nothing of the other side's traffic, and no side's
 * conversations move while another is measured.
 *
 * Pinning. The machine has 2 cores, so two nodes cannot get more CPU than one without taking the
 * load generator's. Both nodes run on core 1, where the one node runs, with their Redis; the load
 * generator keeps core 0. Each side thus has one core for its nodes and Redis: where that core is
 * what limits a row, a ratio below 1 is the CPU that a second node, the Redis hop and cross-node
 * sequencing add per message (what a cluster pays for being one); where PostgreSQL limits it, the
 * ratio also holds the database's share of the cost (more, smaller transactions; locks across
 * nodes). Each row's note has the CPU that each side's nodes and Redis spent per message, read
 * from /proc, so the two can be told apart. Giving node B core 0 instead would measure it against
 * the load generator, not against one node. PostgreSQL is not pinned, as in postgres.ts: its
 * backends run on either core.
 *
 * Placement: role A and role B below are the two nodes; on the one-node side both are that node.
 *
 * - Durable sends, POST /messages: 64 requests in flight from one user into one conversation, as
 *   in durable.ts, the k-th request loop to node k mod 2: both nodes write one conversation, so
 *   their commits queue on its counter row, and each node hears the other's messages and fills the
 *   gaps they leave in its own sequence from the database.
 * - Durable sends, WebSocket: 64 users with a socket each (user k's on node k mod 2), one message
 *   in flight each, each into a group of its own that no other open socket is in.
 * - Fan-out, one conversation: a group of 32; users 0–15 send (a socket each on A, 4 messages in
 *   flight each), users 16–31 receive (a socket each on B). The measure is deliveries/s to the
 *   receivers: with two nodes every one of them crossed Redis.
 * - Fan-out, 32 conversations: user 2c sends (a socket on A, 4 in flight), user 2c + 1 receives on
 *   8 sockets on B. Deliveries/s to the receivers.
 * - Fan-out, one conversation, everyone sending: the group of 32, user u's socket on node u mod 2,
 *   4 in flight each: both nodes write one conversation and deliver each other's messages in seq
 *   order. Deliveries/s to all 32 sockets.
 * - One node with REDIS_URL against one node without: the WebSocket durable sends and the fan-out
 *   to 32 conversations again, all sockets on the one node.
 * - Send→receive latency: users 0 and 1 in a group of their own, one socket each (0 on A, 1 on B);
 *   user 0 sends on a fixed timetable (chat.ts's openLoop, as latency.ts) and the sample is the
 *   arrival at user 1's socket: with two nodes every sample crossed Redis, and only one node
 *   writes the conversation, so this is the hop alone, not sequencing across writers.
 *
 * After each fan-out round the load generator waits for every socket to fall quiet (at most 10 s),
 * so that a node still working off what it was sent does not take the next round's CPU.
 */
import { closedLoop, openLoop, type Peer } from '../chat'
import { apiClusterFixture, CLUSTER_GROUP, CLUSTER_USERS, freshPostgresDatabase, POSTGRES_ADMIN_URL, postgresReachable, type ClusterFixture, type PostgresDatabase } from '../fixtures'
import { canPin, closeSockets, compareMany, cpuSeconds, fmt, openSockets, SECONDS, startPneumatic, warn, type Pneumatic, type Result, type Row, type Side } from '../lib'
import { startRedis, type RedisServer } from '../../tests/support/redis'
import { postSends, SENDERS, socketSends } from './durable'

const POOL_SIZE = 10
const WINDOW = 4
const HALF = CLUSTER_GROUP / 2
const RECEIVER_DEVICES = 8
/** Open-loop rates for the latency rows, messages/s: well under what one node sustains here on PostgreSQL. */
const LATENCY_RATES = [500, 2_000]
/** A socket silent this long after a round means its node is done with the round. */
const QUIET_MS = 200

type Role = 0 | 1

type Deployment = {
  name: string
  nodes: Pneumatic[]
  fixture: ClusterFixture
  /** Where role A (0) and role B (1) sockets go: different nodes with two, the one node with one. */
  at(role: Role): Pneumatic
  pids(): number[]
  /** Its own redis-server; none for the one node without REDIS_URL. */
  redisPid?: number
}

export async function clusterRows(dir: string): Promise<Result[]> {
  if (!(await postgresReachable())) {
    warn(`cluster rows skipped: PostgreSQL does not answer at ${new URL(POSTGRES_ADMIN_URL).host}`)
    return []
  }
  if (!Bun.which('redis-server')) {
    warn('cluster rows skipped: no redis-server on the PATH (Debian: apt-get install redis-server)')
    return []
  }
  const cleanups: (() => Promise<void>)[] = []
  try {
    const one = await deploy(dir, 'one node', 1, true, cleanups)
    const two = await deploy(dir, 'two nodes', 2, true, cleanups)
    const alone = await deploy(dir, 'one node without REDIS_URL', 1, false, cleanups)
    return await measureAll(one, two, alone)
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error) => warn(`cluster clean-up: ${error}`))
  }
}

/** A fresh database, a Redis pinned to the server core (with `withRedis`), `count` nodes on both, and the fixture. */
async function deploy(dir: string, name: string, count: number, withRedis: boolean, cleanups: (() => Promise<void>)[]): Promise<Deployment> {
  const database: PostgresDatabase = await freshPostgresDatabase(`pneumatic_bench_cluster${count}${withRedis ? '' : '_alone'}`)
  cleanups.push(() => database.drop())
  const env = { DATABASE_URL: database.url, DATABASE_POOL_SIZE: String(POOL_SIZE) }
  const redisPid = withRedis ? await ownRedis(env, cleanups) : undefined
  const nodes: Pneumatic[] = []
  for (let i = 0; i < count; i++) {
    const node = await startPneumatic(dir, '', env, `cluster${count}-node${i}${withRedis ? '' : '-alone'}`)
    nodes.push(node)
    cleanups.push(() => node.stop())
  }
  const fixture = await apiClusterFixture(nodes[0]!.base)
  return { name, nodes, fixture, at: (role) => nodes[role % nodes.length]!, pids: () => [...nodes.map((n) => n.process.pid), ...(redisPid ? [redisPid] : [])], redisPid }
}

/** A redis-server of the deployment's own, pinned to the server core, in `env` as REDIS_URL; its pid. */
async function ownRedis(env: Record<string, string>, cleanups: (() => Promise<void>)[]): Promise<number> {
  const redis: RedisServer = await startRedis()
  cleanups.push(() => redis[Symbol.asyncDispose]())
  const redisPid = Number(/process_id:(\d+)/.exec(await redis.cli('INFO', 'server'))?.[1])
  if (!redisPid) throw new Error('redis-server did not say its process id')
  // Killed with this process too, even on a crash or ^C (startRedis's own clean-up is its dispose).
  const killRedis = () => {
    try {
      process.kill(redisPid, 'SIGKILL')
    } catch {}
  }
  process.on('exit', killRedis)
  cleanups.push(async () => void process.off('exit', killRedis))
  if (canPin) Bun.spawnSync(['taskset', '-a', '-cp', '1', String(redisPid)])
  env.REDIS_URL = redis.url
  return redisPid
}

/** What one side did over all its rounds: messages stored (and acknowledged), to weigh its CPU seconds by. */
type Tally = { messages: number }

async function measureAll(one: Deployment, two: Deployment, alone: Deployment): Promise<Result[]> {
  const results: Result[] = []
  const opened: WebSocket[] = []
  const open = async (d: Deployment, sockets: { user: number; role: Role }[]) => {
    const ws = await openSockets(sockets.map(({ user, role }) => `${d.at(role).ws}?token=${d.fixture.tokens[user]}`))
    opened.push(...ws)
    return ws
  }
  /**
   * One comparison, `a` over `b` (two nodes over one, unless said): `measure` makes each side's
   * measurement and counts its messages in the tally; the rows' note gets the CPU each side's
   * nodes and Redis (PostgreSQL not counted) spent per message.
   */
  async function row<K extends string>(
    rows: Record<K, { scenario: string; unit: string }>,
    measure: (d: Deployment, tally: Tally) => () => Promise<Record<K, number>>,
    note: string,
    [a, b] = [two, one],
  ): Promise<void> {
    console.log(`  ${new Date().toISOString().slice(11, 19)} ${Object.values<{ scenario: string }>(rows)[0]!.scenario}`)
    const tallies = { a: { messages: 0 }, b: { messages: 0 } }
    const side = (d: Deployment, tally: Tally): Side<Record<K, number>> => ({ name: d.name, pid: () => d.nodes[0]!.process.pid, pids: d.pids, measure: measure(d, tally) })
    const specs = {} as Record<K, Row>
    for (const key of Object.keys(rows) as K[]) specs[key] = { ...rows[key], target: '—', met: () => null }
    // Each side's Redis is its own, idle while the other side is measured: its CPU over the whole comparison is its side's.
    const redisCpu = (d: Deployment) => (d.redisPid ? cpuSeconds(d.redisPid) : 0)
    const redisBefore = { a: redisCpu(a), b: redisCpu(b) }
    const measured = await compareMany(specs, side(a, tallies.a), side(b, tallies.b))
    const redis = { a: redisCpu(a) - redisBefore.a, b: redisCpu(b) - redisBefore.b }
    const perMessage = (cpu: number, tally: Tally) => (tally.messages ? `${fmt((cpu / tally.messages) * 1e6)} µs` : '—')
    for (const result of measured) {
      result.note =
        `${note}; CPU per message, nodes and Redis: ${a.name} ${perMessage(result.pneumatic.cpuSeconds, tallies.a)}, ${b.name} ${perMessage(result.baseline.cpuSeconds, tallies.b)}; ` +
        `of it Redis: ${perMessage(redis.a, tallies.a)}, ${perMessage(redis.b, tallies.b)}`
    }
    results.push(...measured)
  }
  /** A measurement of messages/s, counted in the tally. */
  const sends = (measure: () => Promise<number>, tally: Tally) => async () => {
    const rate = await measure()
    tally.messages += rate * SECONDS
    return { value: rate }
  }
  try {
    // Durable sends over POST /messages: one user, one conversation, the loops spread over the nodes.
    await row(
      { value: { scenario: `two nodes / one: durable sends on PostgreSQL (${SENDERS} senders, POST /messages, one conversation)`, unit: 'messages/s' } },
      (d, tally) => sends(postSends(d.nodes.map((n) => n.base), d.fixture.tokens[0]!, [d.fixture.pair]), tally),
      `the k-th of ${SENDERS} request loops on node k mod 2`,
    )

    // Durable sends over WebSocket: user k's socket on node k mod 2, into a group no other open socket is in.
    {
      const senders = async (d: Deployment): Promise<Peer[]> =>
        (await open(d, Array.from({ length: SENDERS }, (_, k) => ({ user: k, role: (k % 2) as Role })))).map((ws, k) => ({ ws, conversationId: d.fixture.rooms[k]! }))
      const peers = new Map([
        [two, await senders(two)],
        [one, await senders(one)],
        [alone, await senders(alone)],
      ])
      const measure = (d: Deployment, tally: Tally) => sends(socketSends(peers.get(d)!, `cluster durable sends (${d.name})`), tally)
      const what = `durable sends on PostgreSQL (${SENDERS} senders, WebSocket)`
      await row({ value: { scenario: `two nodes / one: ${what}`, unit: 'messages/s' } }, measure, 'user k on node k mod 2, one message in flight each, each into a group of its own')
      await row({ value: { scenario: `one node with REDIS_URL / without: ${what}`, unit: 'messages/s' } }, measure, 'one message in flight each, each into a group of its own', [one, alone])
      await closeSockets(opened.splice(0))
    }

    /** A closed loop over `peers`, the first `senderCount` sending; deliveries/s to the peers after them (all: to every peer). */
    const fanOut = (label: string, peers: Map<Deployment, Peer[]>, senderCount: number, countAt: 'receivers' | 'all') => (d: Deployment, tally: Tally) => async () => {
      const all = peers.get(d)!
      const load = await closedLoop(all, senderCount, WINDOW)
      await settle(all, `${label} (${d.name})`)
      if (load.errors || load.closed) warn(`${label} (${d.name}): ${load.errors} error frames, ${load.closed} sockets closed`)
      tally.messages += load.messages * SECONDS
      const total = load.received.reduce((a, b) => a + b, 0)
      const atReceivers = countAt === 'all' ? total : load.received.slice(senderCount).reduce((a, b) => a + b, 0)
      return { deliveries: total ? (load.deliveries * atReceivers) / total : 0, messages: load.messages }
    }
    const fanOutRows = (label: string, unit: string, compared = 'two nodes / one') => ({
      deliveries: { scenario: `${compared}: ${label}`, unit },
      messages: { scenario: `${compared}: ${label}: messages stored`, unit: 'messages/s' },
    })

    // Fan-out in one conversation: senders on A, receivers on B.
    {
      const groupPeers = async (d: Deployment) => {
        const members = [...Array.from({ length: HALF }, (_, u) => ({ user: u, role: 0 as Role })), ...Array.from({ length: HALF }, (_, u) => ({ user: HALF + u, role: 1 as Role }))]
        return (await open(d, members)).map((ws) => ({ ws, conversationId: d.fixture.group }))
      }
      const peers = new Map([
        [two, await groupPeers(two)],
        [one, await groupPeers(one)],
      ])
      const label = `fan-out: ${HALF} senders on A → ${HALF} receivers on B, one conversation`
      await row(fanOutRows(label, 'deliveries/s to the receivers'), fanOut(label, peers, HALF, 'receivers'), `${WINDOW} messages in flight per sender`)
      await closeSockets(opened.splice(0))
    }

    // Fan-out in many conversations: a sender on A, the other member's devices on B.
    {
      const duos = CLUSTER_USERS / 2
      const duoPeers = async (d: Deployment) => {
        const sending = await open(d, Array.from({ length: duos }, (_, c) => ({ user: 2 * c, role: 0 as Role })))
        const receiving = await open(d, Array.from({ length: duos * RECEIVER_DEVICES }, (_, s) => ({ user: 2 * Math.floor(s / RECEIVER_DEVICES) + 1, role: 1 as Role })))
        return [...sending.map((ws, c) => ({ ws, conversationId: d.fixture.duos[c]! })), ...receiving.map((ws, s) => ({ ws, conversationId: d.fixture.duos[Math.floor(s / RECEIVER_DEVICES)]! }))]
      }
      const peers = new Map([
        [two, await duoPeers(two)],
        [one, await duoPeers(one)],
        [alone, await duoPeers(alone)],
      ])
      const label = `fan-out: ${duos} conversations, a sender on A → ${RECEIVER_DEVICES} sockets of the other member on B`
      await row(fanOutRows(label, 'deliveries/s to the receivers'), fanOut(label, peers, duos, 'receivers'), `${WINDOW} messages in flight per sender`)
      await row(
        fanOutRows(`fan-out: ${duos} conversations, a sender → ${RECEIVER_DEVICES} sockets of the other member`, 'deliveries/s to the receivers', 'one node with REDIS_URL / without'),
        fanOut(label, peers, duos, 'receivers'),
        `${WINDOW} messages in flight per sender`,
        [one, alone],
      )
      await closeSockets(opened.splice(0))
    }

    // Fan-out in one conversation, every member sending, half of them on each node.
    {
      const everyone = async (d: Deployment) =>
        (await open(d, Array.from({ length: CLUSTER_GROUP }, (_, u) => ({ user: u, role: (u % 2) as Role })))).map((ws) => ({ ws, conversationId: d.fixture.group }))
      const peers = new Map([
        [two, await everyone(two)],
        [one, await everyone(one)],
      ])
      const label = `fan-out: ${CLUSTER_GROUP} clients in one conversation, all sending, half on each node`
      await row(fanOutRows(label, 'deliveries/s'), fanOut(label, peers, CLUSTER_GROUP, 'all'), `${WINDOW} messages in flight per client`)
      await closeSockets(opened.splice(0))
    }

    // Latency: user 0 on A sends, user 1 on B receives, at fixed rates.
    {
      const pair = async (d: Deployment) => (await open(d, [{ user: 0, role: 0 }, { user: 1, role: 1 }])).map((ws) => ({ ws, conversationId: d.fixture.latency }))
      const peers = new Map([
        [two, await pair(two)],
        [one, await pair(one)],
      ])
      for (const rate of LATENCY_RATES) {
        const at = `at ${fmt(rate)} msg/s, sender and receiver on different nodes`
        await row(
          { p50: { scenario: `two nodes / one: send→receive p50 ${at}`, unit: 'ms' }, p99: { scenario: `two nodes / one: send→receive p99 ${at}`, unit: 'ms' } },
          (d, tally) => async () => {
            const result = await openLoop(peers.get(d)!, rate, undefined, 1)
            if (result.missing || result.errors) warn(`cluster latency at ${fmt(rate)} msg/s (${d.name}): ${result.missing} deliveries missing, ${result.errors} error frames`)
            tally.messages += result.sent
            return { p50: result.p50, p99: result.p99 }
          },
          'open loop, one sender → one receiver; one node: both on it',
        )
      }
    }
    return results
  } finally {
    await closeSockets(opened)
  }
}

/** Waits until no socket has received anything for QUIET_MS (at most 10 s). */
async function settle(peers: Peer[], label: string): Promise<void> {
  let last = performance.now()
  for (const peer of peers) peer.ws.onmessage = () => void (last = performance.now())
  const deadline = performance.now() + 10_000
  while (performance.now() - last < QUIET_MS && performance.now() < deadline) await Bun.sleep(20)
  if (performance.now() >= deadline) warn(`${label}: sockets still receiving 10 s after the round`)
  for (const peer of peers) peer.ws.onmessage = null
}
