/**
 * Fan-out: every client sends as fast as its window allows, every message is persisted and
 * acknowledged, and every member's socket receives it; the measure is deliveries per second
 * (message frames received across all sockets) vs the bare Bun.serve pub/sub chat server
 * (bench/baselines/bare-chat.ts), with the same sockets, frames and windows.
 *
 * - 32 clients in one conversation: 32 users, one socket each, each with 4 messages in flight.
 * - 1,000 clients across 100 conversations, 10 sockets in each: the 2 members of each room with
 *   5 devices (sockets) each, 1 message in flight per socket. Measured twice: with time-ordered
 *   message_ids (UUIDv7, as the README advises and the web UI sends) and with random ones
 *   (crypto.randomUUID(), the user guide's example), which cost a random index page each.
 */
import { closedLoop, type MessageIds, type Peer } from '../chat'
import { FANOUT_MEMBERS, ROOM_MEMBERS, roomMember, type ChatContext } from '../fixtures'
import { closeSockets, compare, median, openSockets, spawnBaseline, stop, warn, type Result, type Side } from '../lib'

const GROUP_WINDOW = 4
const ROOMS_WINDOW = 1
const DEVICES = 5

export async function fanOut({ server, fixture, tokens }: ChatContext): Promise<Result[]> {
  const bare = await spawnBaseline('bare-chat.ts')
  const results: Result[] = []
  const opened: WebSocket[] = []
  const open = async (urls: string[]) => {
    const sockets = await openSockets(urls)
    opened.push(...sockets)
    return sockets
  }
  const side = (name: string, pid: () => number, peers: Peer[], window: number, rates?: number[], messageIds?: MessageIds): Side => ({
    name,
    pid,
    measure: async () => {
      const load = await closedLoop(peers, peers.length, window, undefined, messageIds)
      if (load.errors || load.closed) warn(`fan-out ${peers.length} (${name}): ${load.errors} error frames, ${load.closed} sockets closed`)
      rates?.push(load.messages)
      return load.deliveries
    },
  })
  try {
    const members = Array.from({ length: FANOUT_MEMBERS }, (_, u) => u)
    const group = (sockets: WebSocket[]): Peer[] => sockets.map((ws) => ({ ws, conversationId: fixture.fanout }))
    const pnGroup = group(await open(members.map((u) => `${server.ws}?token=${tokens[u]}`)))
    const bareGroup = group(await open(members.map(() => `${bare.url}/?conversation=${fixture.fanout}`)))
    const messageRates: number[] = []
    results.push(
      await compare(
        `fan-out: ${FANOUT_MEMBERS} clients in one conversation`,
        'deliveries/s',
        side('pneumatic', () => server.process.pid, pnGroup, GROUP_WINDOW, messageRates),
        side('bare Bun.serve pub/sub', () => bare.child.pid, bareGroup, GROUP_WINDOW),
        '≥ 0.5×',
        (_, r) => r >= 0.5,
      ),
    )
    results.at(-1)!.note = `${GROUP_WINDOW} messages in flight per client; Pneumatic's median message rate ${Math.round(median(messageRates))}/s`
    await closeSockets(opened.splice(0))

    // Socket s: room ⌊s / 10⌋, its member s mod 2, that member's device ⌊(s mod 10) / 2⌋.
    const perRoom = ROOM_MEMBERS * DEVICES
    const clients = Array.from({ length: fixture.rooms.length * perRoom }, (_, s) => ({ room: Math.floor(s / perRoom), user: roomMember(Math.floor(s / perRoom), s % ROOM_MEMBERS) }))
    const rooms = (sockets: WebSocket[]): Peer[] => sockets.map((ws, s) => ({ ws, conversationId: fixture.rooms[clients[s]!.room]! }))
    const pnRooms = rooms(await open(clients.map((c) => `${server.ws}?token=${tokens[c.user]}`)))
    const bareRooms = rooms(await open(clients.map((c) => `${bare.url}/?conversation=${fixture.rooms[c.room]}`)))
    for (const [messageIds, named] of [['v7', 'UUIDv7 message_ids'], ['v4', 'random (v4) message_ids']] as const) {
      results.push(
        await compare(
          `fan-out: ${clients.length.toLocaleString('en-US')} clients in ${fixture.rooms.length} conversations of ${perRoom}, ${named}`,
          'deliveries/s',
          side('pneumatic', () => server.process.pid, pnRooms, ROOMS_WINDOW, undefined, messageIds),
          side('bare Bun.serve pub/sub', () => bare.child.pid, bareRooms, ROOMS_WINDOW, undefined, messageIds),
          '≥ 0.5×',
          (_, r) => r >= 0.5,
          `${ROOMS_WINDOW} message in flight per client; ${ROOM_MEMBERS} users × ${DEVICES} devices per conversation`,
        ),
      )
    }
    return results
  } finally {
    await closeSockets(opened)
    await stop(bare.child)
  }
}
