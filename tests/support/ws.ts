/** A WebSocket client for tests: frames are queued and awaited, never slept for. */
export type Frame = { type: string; [key: string]: any }

type Waiter = { match: (f: Frame) => boolean; resolve: (f: Frame) => void; reject: (e: Error) => void; timer: Timer }

const WAIT_MS = 5000

export class TestSocket {
  readonly received: Frame[] = []
  private readonly pending: Frame[] = []
  private readonly waiters: Waiter[] = []
  readonly closed: Promise<CloseEvent>

  private constructor(readonly ws: WebSocket) {
    ws.addEventListener('message', (event) => {
      // The web UI's sockets also receive rendered HTML; it is kept as { type: 'html', html }.
      let frame: Frame
      try {
        frame = JSON.parse(String(event.data)) as Frame
      } catch {
        frame = { type: 'html', html: String(event.data) }
      }
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
  static async open(url: string, init?: { headers?: Record<string, string> }): Promise<TestSocket> {
    const socket = new TestSocket(new WebSocket(url, init as any))
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

  /** The next frame (in arrival order) that matches, waiting for it if it has not come yet. */
  next(match: (f: Frame) => boolean = () => true, what = 'a matching frame'): Promise<Frame> {
    const index = this.pending.findIndex(match)
    if (index !== -1) return Promise.resolve(this.pending.splice(index, 1)[0]!)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1)
        reject(new Error(`timed out waiting for ${what}; pending: ${JSON.stringify(this.pending).slice(0, 500)}`))
      }, WAIT_MS)
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
