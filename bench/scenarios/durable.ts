/**
 * Durable sends: 64 concurrent senders, each message acknowledged only after it is committed, vs
 * raw bun:sqlite doing one insert per transaction with the same pragmas (WAL, synchronous=FULL).
 *
 * - POST /messages: 64 requests in flight from one user into one conversation; a 201 is the ack.
 * - WebSocket: 64 users with a socket each, each sending into a conversation (a room of
 *   bench/fixtures.ts) no other open socket is in, one message in flight at a time; the message coming back on the sender's socket (sent
 *   after commit) is the ack, so no fan-out is measured here, only durability.
 */
import { join } from 'node:path'
import { closedLoop, type Peer } from '../chat'
import { roomMember, type ChatContext } from '../fixtures'
import { BASELINES, closeSockets, compare, onServerCore, openSockets, rate, SECONDS, track, warn, type Result, type Side } from '../lib'

export const SENDERS = 64
const TARGET = '≥ 10,000 msg/s and ≥ 5× raw'
const met = (pn: number, ratio: number) => pn >= 10_000 && ratio >= 5

const rawSqlite: Side = {
  name: 'raw bun:sqlite, 1 insert per transaction',
  pid: () => undefined,
  measure: async () => {
    const child = track(Bun.spawn([...onServerCore, process.execPath, join(BASELINES, 'sqlite-inserts.ts')], { env: { ...process.env, SECONDS: String(SECONDS) }, stdout: 'pipe' }))
    const { count } = JSON.parse(await new Response(child.stdout).text())
    return count / SECONDS
  },
}

/**
 * SENDERS POST /messages in flight at once until the time is up, the k-th loop into
 * conversationIds[k mod n] (one conversation: all into it) on bases[k mod m] (several nodes of a
 * cluster: spread over them); messages/s acknowledged with a 201. Pneumatic and the PostgreSQL
 * baseline take the same request.
 */
export const postSends = (base: string | string[], token: string, conversationIds: string[]) => {
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` }
  const bases = typeof base === 'string' ? [base] : base
  return () =>
    rate(SENDERS, async (loop) => {
      const reply = await fetch(bases[loop % bases.length] + '/messages', {
        method: 'POST',
        headers,
        body: JSON.stringify({ message_id: `post-${++posted}`, conversation_id: conversationIds[loop % conversationIds.length], content: 'hello' }),
      })
      await reply.arrayBuffer()
      return reply.status === 201
    })
}
let posted = 0 // message_ids are unique for the whole run: a repeated one would be a no-op retry

/** The senders' sockets, one message in flight on each; messages/s acknowledged on the sender's own socket. */
export const socketSends = (peers: Peer[], label: string) => async () => {
  const load = await closedLoop(peers, peers.length, 1)
  if (load.errors || load.closed) warn(`${label}: ${load.errors} error frames, ${load.closed} sockets closed`)
  return load.messages
}

export async function durableSends({ server, fixture, tokens }: ChatContext): Promise<Result[]> {
  const results: Result[] = []
  const pneumaticPid = () => server.process.pid
  results.push(
    await compare('durable sends (64 senders, POST /messages)', 'messages/s', { name: 'pneumatic', pid: pneumaticPid, measure: postSends(server.base, tokens[0]!, [fixture.pair]) }, rawSqlite, TARGET, met),
  )

  // The first member of room k, the only open socket in room k.
  const senders = Array.from({ length: SENDERS }, (_, k) => roomMember(k, 0))
  const sockets = await openSockets(senders.map((u) => `${server.ws}?token=${tokens[u]}`))
  try {
    const peers: Peer[] = sockets.map((ws, k) => ({ ws, conversationId: fixture.rooms[k]! }))
    results.push(
      await compare(
        'durable sends (64 senders, WebSocket)',
        'messages/s',
        { name: 'pneumatic', pid: pneumaticPid, measure: socketSends(peers, 'durable WebSocket sends') },
        rawSqlite,
        TARGET,
        met,
      ),
    )
  } finally {
    await closeSockets(sockets)
  }
  return results
}
