/**
 * WebSocket chat load, the same frames for Pneumatic and the bare chat baseline: closed loops
 * (each sender keeps a window of unacknowledged messages) for throughput, and an open loop (sends
 * on a fixed timetable) for latency.
 *
 * A message is acknowledged when its sender's own socket receives it back: Pneumatic publishes a
 * new message to its conversation's topic, sender included, only after it has committed. An error
 * frame naming the message_id also settles it (counted as an error, not a message).
 *
 * The hot path reads frames as strings (a prefix and an indexOf): parsing every frame as JSON
 * would make the load generator, not the server, the bottleneck.
 *
 * Closed-loop senders name their messages with UUIDv7s, as the README advises clients to: time-ordered
 * idempotency keys land together in the (message_id, sender_id) index instead of one random page
 * each; `messageIds: 'v4'` sends random UUIDs instead, as a client following the user guide's
 * example does. (The open loop's ids, `<run>-<k>`, are ordered by k, which it reads back to time them.)
 */
import { histogram, SECONDS } from './lib'

export type Peer = { ws: WebSocket; conversationId: string }

const CONTENT = 'hello from the bench'
const MESSAGE_ID = '"message_id":"'
let runs = 0 // open-loop message_ids are unique per run, so a round never repeats one (that would be a no-op retry)

const frameOf = (id: string, conversationId: string) => `{"type":"message","message_id":"${id}","conversation_id":"${conversationId}","content":"${CONTENT}"}`
const isMessage = (data: string) => data.startsWith('{"type":"message"')

export type LoadResult = {
  /** message frames received per second, across all peers */
  deliveries: number
  /** message frames each peer received while counting (not per second) */
  received: number[]
  /** messages acknowledged to their sender per second */
  messages: number
  errors: number
  /** peers whose socket was not open at the end */
  closed: number
}

/**
 * The first `senders` peers each keep `window` messages in flight for `seconds`; every peer counts
 * the message frames it receives. Afterwards waits (at most 5 s) for what is still in flight, so
 * the next measurement starts on an idle server.
 */
export type MessageIds = 'v7' | 'v4'

export async function closedLoop(peers: Peer[], senders: number, window: number, seconds = SECONDS, messageIds: MessageIds = 'v7'): Promise<LoadResult> {
  const newMessageId = messageIds === 'v7' ? () => Bun.randomUUIDv7() : () => crypto.randomUUID()
  let counting = true
  let deliveries = 0
  let messages = 0
  let errors = 0
  let inFlight = 0
  const received = new Array<number>(peers.length).fill(0)
  const starters = peers.map((peer, i) => {
    const pending = new Set<string>()
    const send = () => {
      const id = newMessageId()
      pending.add(id)
      inFlight++
      peer.ws.send(frameOf(id, peer.conversationId))
    }
    peer.ws.onmessage = (event) => {
      const data = event.data as string
      const message = isMessage(data)
      if (message) {
        if (counting) {
          deliveries++
          received[i]!++
        }
      } else if (data.startsWith('{"type":"error"')) errors++
      if (i >= senders) return
      const at = data.indexOf(MESSAGE_ID)
      if (at < 0) return
      const id = data.slice(at + MESSAGE_ID.length, data.indexOf('"', at + MESSAGE_ID.length))
      // Not this peer's message (another member's), or already settled (an ack frame and the echo would both name it).
      if (!pending.delete(id)) return
      inFlight--
      if (!counting) return
      if (message) messages++
      send()
    }
    // The first window; after it, one new message per acknowledgement.
    return () => {
      if (i < senders && peer.ws.readyState === WebSocket.OPEN) for (let w = 0; w < window; w++) send()
    }
  })
  const start = performance.now()
  for (const begin of starters) begin()
  await Bun.sleep(seconds * 1000)
  counting = false
  const elapsed = (performance.now() - start) / 1000
  const drainUntil = performance.now() + 5000
  while (inFlight > 0 && performance.now() < drainUntil) await Bun.sleep(5)
  for (const peer of peers) peer.ws.onmessage = null
  return {
    deliveries: deliveries / elapsed,
    received,
    messages: messages / elapsed,
    errors,
    closed: peers.filter((p) => p.ws.readyState !== WebSocket.OPEN).length,
  }
}

export type LatencyResult = {
  p50: number
  p99: number
  max: number
  sent: number
  missing: number
  errors: number
  /** How far this load generator fell behind its own timetable at worst: a stall of its own, or a flood of frames to read. */
  behind: number
}

/**
 * Open loop: message k is due at t0 + k / rate, sent by peer k mod `senders` (by default every
 * peer takes its turn; 1: the first peer sends, the others only receive), whatever happened to the
 * messages before it. Every delivery to every other peer is one sample: receive time − due time,
 * so a server (or a load generator) that falls behind shows as latency instead of silently sending
 * less (no coordinated omission). Deliveries still missing 2 s after the last due time are
 * recorded at that latency. Returns milliseconds. `behind` is the latest any message was sent
 * after its due time: a round whose p99 is about as large as that was set by this process (or
 * by a flood of frames it had to read first), not by a quiet server.
 */
export async function openLoop(peers: Peer[], rate: number, seconds = SECONDS, senders = peers.length): Promise<LatencyResult> {
  const run = `o${++runs}`
  const tag = MESSAGE_ID + run + '-'
  const total = Math.max(1, Math.floor(rate * seconds))
  const interval = 1000 / rate
  const received = new Uint16Array(total)
  const samples = histogram()
  let receivedTotal = 0
  let errors = 0
  const t0 = performance.now() + 20
  const n = peers.length
  peers.forEach((peer, j) => {
    peer.ws.onmessage = (event) => {
      const data = event.data as string
      const at = data.indexOf(tag)
      if (at < 0) return
      if (!isMessage(data)) return void errors++
      const k = parseInt(data.slice(at + tag.length, at + tag.length + 12), 10) // stops at the closing quote
      if (k % senders === j) return // the sender's own copy: its acknowledgement, not a delivery to measure
      received[k]!++
      receivedTotal++
      samples.recordValue(Math.max(1, Math.round((performance.now() - (t0 + k * interval)) * 1000)))
    }
  })
  let k = 0
  let behind = 0
  while (k < total) {
    const now = performance.now()
    const due = Math.min(total, Math.floor((now - t0) / interval) + 1)
    if (k < due) behind = Math.max(behind, now - (t0 + k * interval)) // k is the most overdue of this burst
    for (; k < due; k++) {
      const peer = peers[k % senders]!
      peer.ws.send(frameOf(`${run}-${k}`, peer.conversationId))
    }
    if (k < total) await Bun.sleep(Math.max(0, t0 + k * interval - performance.now()))
  }
  const receivers = Math.max(1, n - 1)
  const expected = total * receivers
  const deadline = t0 + total * interval + 2000
  while (receivedTotal < expected && performance.now() < deadline) await Bun.sleep(5)
  for (const peer of peers) peer.ws.onmessage = null
  let missing = 0
  if (receivedTotal < expected) {
    const at = performance.now()
    for (let m = 0; m < total; m++) {
      const lost = receivers - received[m]!
      if (lost <= 0) continue
      missing += lost
      samples.recordValueWithCount(Math.round((at - (t0 + m * interval)) * 1000), lost)
    }
  }
  const ms = (us: number) => us / 1000
  return { p50: ms(samples.getValueAtPercentile(50)), p99: ms(samples.getValueAtPercentile(99)), max: ms(samples.maxValue), sent: total, missing, errors, behind }
}
