import type { ServerWebSocket } from 'bun'
import type { User } from '../users/model'
import type { FrameWindow, PingWindow } from './frame-limits'

export type Socket = ServerWebSocket<unknown>

/** JSON frames for API clients; rendered HTML pushes for the web UI (`?format=html`). */
export type Format = 'json' | 'html'

/** What happens over a socket's life; the gateway's frame handling does it (see protocol.ts). */
export interface SocketEvents {
  opened(connection: Connection, ws: Socket): void
  received(connection: Connection, incoming: string | Buffer): void
  /** A protocol-level ping or pong: Bun has answered a ping already. */
  pinged(connection: Connection): void
  closed(connection: Connection, code: number): void
}

const SETTLED: Promise<unknown> = Promise.resolve()

/**
 * Everything the gateway keeps for one socket, from its upgrade to its close, as the socket's
 * data (Bun's ws.data). Elysia's Bun handler calls ws.data.open, .message and .close (the gateway
 * tests fail if that ever changes). They are methods that pass each call on to the gateway's one
 * `events` object, so a socket costs this one small object and no closures; nothing of the
 * upgrade request is kept.
 */
export class Connection implements FrameWindow, PingWindow {
  /** The socket, from open on. */
  ws!: Socket
  openedAt = 0
  /** The answer to the socket's latest frame, while it is still to be sent (see protocol.ts answer()). */
  answering: Promise<void> | undefined = undefined
  /** The check of the socket's latest message, which the next one waits for (see protocol.ts postInOrder()). */
  checking: Promise<unknown> = SETTLED
  /** Whether the gateway disconnected it for what was buffered for it, or Bun dropped a send to it (see registry.ts send()). */
  backpressured = false
  frameWindowStart = 0
  framesInWindow = 0
  pingWindowStart = 0
  pingsInWindow = 0
  errorLinesWindowStart = 0
  errorLinesInWindow = 0
  /**
   * Opened with `?resume=1`: it follows no conversation until its `resume` frame has replayed
   * them (resume.ts), so nothing reaches it live before that, and nothing twice.
   */
  awaitingResume = false
  constructor(
    private readonly events: SocketEvents,
    /** After open, used only for its id: a user's sockets share the first one's User. */
    public user: User,
    /** The session whose end closes this socket: the one it was opened with, or re-authenticated with. */
    public sessionId: string,
    readonly format: Format,
    /** When its credentials stop being valid (ms since the epoch): then it is closed, unless renewed by an `auth` frame. */
    public expiresAt: number,
    /** Opened with the session cookies, which a reconnect renews: told to reconnect when they expire. */
    readonly viaCookies: boolean,
  ) {}
  open(ws: Socket): void {
    this.events.opened(this, ws)
  }
  message(_: Socket, incoming: string | Buffer): void {
    this.events.received(this, incoming)
  }
  ping(): void {
    this.events.pinged(this)
  }
  pong(): void {
    this.events.pinged(this)
  }
  close(_: Socket, code: number): void {
    this.events.closed(this, code)
  }
}
