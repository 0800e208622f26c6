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

const SENDERS = 64
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

export async function durableSends({ server, fixture, tokens }: ChatContext): Promise<Result[]> {
  const results: Result[] = []
  const pneumaticPid = () => server.process.pid
  let n = 0
  results.push(
    await compare(
      'durable sends (64 senders, POST /messages)',
      'messages/s',
      {
        name: 'pneumatic',
        pid: pneumaticPid,
        measure: () =>
          rate(SENDERS, async () => {
            const reply = await fetch(server.base + '/messages', {
              method: 'POST',
              headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[0]}` },
              body: JSON.stringify({ message_id: `post-${++n}`, conversation_id: fixture.pair, content: 'hello' }),
            })
            await reply.arrayBuffer()
            return reply.status === 201
          }),
      },
      rawSqlite,
      TARGET,
      met,
    ),
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
        {
          name: 'pneumatic',
          pid: pneumaticPid,
          measure: async () => {
            const load = await closedLoop(peers, SENDERS, 1)
            if (load.errors || load.closed) warn(`durable WebSocket sends: ${load.errors} error frames, ${load.closed} sockets closed`)
            return load.messages
          },
        },
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
