/** A WebSocket client for tests: frames are queued and awaited, never slept for. */
export type Frame = { type: string; [key: string]: any }

type Waiter = { match: (f: Frame) => boolean; resolve: (f: Frame) => void; reject: (e: Error) => void; timer: Timer }

const WAIT_MS = 5000

/** A presence frame, or the web UI's rendering of one (views/presence.ts presencePush). */
const isPresence = (frame: Frame) => frame.type === 'presence' || (frame.type === 'html' && frame.html.startsWith('<hx-partial hx-target="#live" hx-swap="presence">'))

export type TestSocketOptions = {
  headers?: Record<string, string>
  /**
   * Whether presence frames (others coming online or going offline) are kept, waited for and
   * drained like any other. Off by default: they arrive whenever someone else connects, so a test
   * that is not about presence would find them among what it waits for; they are then dropped.
   */
  presence?: boolean
}

export class TestSocket {
  readonly received: Frame[] = []
  private readonly pending: Frame[] = []
  private readonly waiters: Waiter[] = []
  readonly closed: Promise<CloseEvent>

  private constructor(
    readonly ws: WebSocket,
    presence: boolean,
  ) {
    ws.addEventListener('message', (event) => {
      // The web UI's sockets also receive rendered HTML; it is kept as { type: 'html', html }.
      let frame: Frame
      try {
        frame = JSON.parse(String(event.data)) as Frame
      } catch {
        frame = { type: 'html', html: String(event.data) }
      }
      if (!presence && isPresence(frame)) return
      this.received.push(frame)
      const index = this.waiters.findIndex((w) => w.match(frame))
      if (index === -1) return void this.pending.push(frame)
      const [waiter] = this.waiters.splice(index, 1)
      clearTimeout(waiter!.timer)
      waiter!.resolve(frame)
    })
    this.closed = new Promise((resolve) => ws.addEventListener('close', resolve, { once: true }))
  }

  /** Connects and waits for the server's `ready` frame (subscriptions are in place after it). */
  static async open(url: string, init: TestSocketOptions = {}): Promise<TestSocket> {
    // Anything else (headers, Bun's tls) goes to the WebSocket as it is.
    const { presence = false, ...options } = init
    const socket = new TestSocket(new WebSocket(url, Object.keys(options).length > 0 ? (options as any) : undefined), presence)
    await Promise.race([
      socket.next((f) => f.type === 'ready'),
      socket.closed.then((e) => {
        throw new Error(`socket closed before ready: ${e.code} ${e.reason}`)
      }),
    ])
    return socket
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }

  /** The next frame (in arrival order) that matches, waiting for it (`ms` at most) if it has not come yet. */
  next(match: (f: Frame) => boolean = () => true, what = 'a matching frame', ms = WAIT_MS): Promise<Frame> {
    const index = this.pending.findIndex(match)
    if (index !== -1) return Promise.resolve(this.pending.splice(index, 1)[0]!)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1)
        reject(new Error(`timed out waiting for ${what}; pending: ${JSON.stringify(this.pending).slice(0, 500)}`))
      }, ms)
      const waiter: Waiter = { match, resolve, reject, timer }
      this.waiters.push(waiter)
    })
  }

  nextOfType(type: string): Promise<Frame> {
    return this.next((f) => f.type === type, `a "${type}" frame`)
  }

  /** The next live message frame whose message matches. */
  nextMessage(match: (m: any) => boolean = () => true): Promise<any> {
    return this.next((f) => f.type === 'message' && match(f.message), 'a message frame').then((f) => f.message)
  }

  /**
   * Everything the server sent before this call was answered: frames are ordered, so once the
   * pong arrives, anything published earlier has arrived too. Returns the frames left unclaimed.
   */
  async drain(): Promise<Frame[]> {
    this.send({ type: 'ping' })
    await this.nextOfType('pong')
    return this.pending.splice(0)
  }

  close(): void {
    this.ws.close()
  }

  [Symbol.dispose](): void {
    this.close()
  }
}

/** Tries an upgrade with plain fetch, to read the refusal's status and body. */
export async function attemptUpgrade(httpUrl: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const response = await fetch(httpUrl, {
    headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13', ...headers },
  })
  const text = await response.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {}
  return { status: response.status, body }
}

/** A frame from the server as RawSocket reads it: its opcode (1 text, 8 close, 9 ping, 10 pong) and payload. */
export type RawFrame = { opcode: number; payload: Buffer }

const OPCODE = { text: 0x1, close: 0x8, ping: 0x9, pong: 0xa } as const

/** One client frame, masked as RFC 6455 requires (with a zero key, which leaves the payload as it is). */
function clientFrame(opcode: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const length =
    payload.length < 126 ? [0x80 | payload.length] : payload.length < 65536 ? [0x80 | 126, payload.length >> 8, payload.length & 0xff] : [0x80 | 127, 0, 0, 0, 0, ...[24, 16, 8, 0].map((s) => (payload.length >>> s) & 0xff)]
  return Buffer.concat([Buffer.from([0x80 | opcode, ...length, 0, 0, 0, 0]), payload])
}

/**
 * A WebSocket client over raw TCP, for what WebSocket clients do not do: send protocol pings and
 * pongs by the thousand, or never read. Reads and parses the server's frames unless paused.
 */
export class RawSocket {
  readonly frames: RawFrame[] = []
  private buffer: Buffer = Buffer.alloc(0)
  private readonly listeners: Array<() => void> = []
  /** Resolves when the TCP connection has closed, whoever closed it. */
  readonly ended: Promise<void>

  private constructor(readonly socket: import('node:net').Socket) {
    socket.on('error', () => {}) // a server that hangs up on it is what some tests want
    socket.on('data', (data: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, data])
      this.parse()
    })
    this.ended = new Promise((resolve) => socket.once('close', () => resolve()))
    this.ended.then(() => this.notify())
  }

  /** Completes the upgrade to `wsUrl` (which carries its ?token=); fails unless the answer is 101. */
  static async open(wsUrl: string): Promise<RawSocket> {
    const { connect } = await import('node:net')
    const url = new URL(wsUrl)
    const socket = connect(Number(url.port), url.hostname)
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
    const head = new Promise<Buffer>((resolve) => socket.once('data', resolve))
    socket.write(
      `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    )
    const data = await head
    const end = data.indexOf('\r\n\r\n')
    if (!String(data.subarray(0, end)).startsWith('HTTP/1.1 101')) throw new Error(`upgrade refused: ${String(data.subarray(0, end))}`)
    const raw = new RawSocket(socket)
    raw.buffer = data.subarray(end + 4)
    raw.parse()
    return raw
  }

  text(data: string): boolean {
    return this.socket.write(clientFrame(OPCODE.text, Buffer.from(data)))
  }

  /** `count` ping control frames in one write. */
  ping(count = 1): boolean {
    return this.socket.write(Buffer.concat(Array.from({ length: count }, () => clientFrame(OPCODE.ping))))
  }

  /** `count` unsolicited pong control frames in one write. */
  pong(count = 1): boolean {
    return this.socket.write(Buffer.concat(Array.from({ length: count }, () => clientFrame(OPCODE.pong))))
  }

  /** Stops reading: what the server sends piles up in its buffers. */
  pause(): void {
    this.socket.pause()
  }

  destroy(): void {
    this.socket.destroy()
  }

  /** The text frames received so far, parsed as JSON. */
  texts(): Frame[] {
    return this.frames.filter((f) => f.opcode === OPCODE.text).map((f) => JSON.parse(String(f.payload)) as Frame)
  }

  count(opcode: 'ping' | 'pong' | 'text' | 'close'): number {
    return this.frames.filter((f) => f.opcode === OPCODE[opcode]).length
  }

  /** Waits (5 s at most) until `ready()` holds on the frames read so far. */
  until(ready: (socket: RawSocket) => boolean, what: string): Promise<void> {
    if (ready(this)) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; frames: ${this.frames.length}`)), WAIT_MS)
      const check = () => {
        if (!ready(this)) return
        clearTimeout(timer)
        this.listeners.splice(this.listeners.indexOf(check), 1)
        resolve()
      }
      this.listeners.push(check)
    })
  }

  /** The server's close frame: its code and reason. */
  async closeFrame(): Promise<{ code: number; reason: string }> {
    await this.until((s) => s.count('close') > 0, 'a close frame')
    const payload = this.frames.find((f) => f.opcode === OPCODE.close)!.payload
    return { code: payload.readUInt16BE(0), reason: String(payload.subarray(2)) }
  }

  private parse(): void {
    while (this.buffer.length >= 2) {
      let length = this.buffer[1]! & 0x7f
      let offset = 2
      if (length === 126) {
        if (this.buffer.length < 4) return
        length = this.buffer.readUInt16BE(2)
        offset = 4
      } else if (length === 127) {
        if (this.buffer.length < 10) return
        length = Number(this.buffer.readBigUInt64BE(2))
        offset = 10
      }
      if (this.buffer.length < offset + length) return
      this.frames.push({ opcode: this.buffer[0]! & 0x0f, payload: this.buffer.subarray(offset, offset + length) })
      this.buffer = this.buffer.subarray(offset + length)
    }
    this.notify()
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener()
  }
}
