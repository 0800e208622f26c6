import pino, { type Logger } from 'pino'
import type { LogLevel } from '../config'
import { activeTraceId } from './tracing'

export type { Logger }

// Defence in depth: nothing logs these on purpose, and if one ever slips in, it is masked.
const SECRET_KEYS = ['authorization', 'cookie', 'set-cookie', 'password', 'token', 'access_token', 'refresh_token', 'jwt_secret']
const REDACT = [...SECRET_KEYS, ...SECRET_KEYS.map((k) => `*.${k}`), ...SECRET_KEYS.map((k) => `*.headers["${k}"]`)]

/** How much of a client-supplied value a log line keeps. */
export const MAX_LOGGED_CLIENT_CHARS = 64

// A JWT, whole or cut short: its header and payload segments start with "eyJ" ('{"' in base64url).
const JWT_LIKE = /eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){0,2}/g

/**
 * Any value a client chose (a frame's type, a path), as it may appear in a log line: cut to
 * MAX_LOGGED_CLIENT_CHARS (the last one an ellipsis), and with anything shaped like a token
 * masked, since redaction by key cannot see inside a value. Every client value reaches the log
 * through here, so no client can write more than this per field.
 */
export function clientText(value: string, max = MAX_LOGGED_CLIENT_CHARS): string {
  const cut = value.length > max ? `${value.slice(0, max - 1)}…` : value
  return cut.replace(JWT_LIKE, '[redacted]')
}

/** A URL safe to log: credentials in its query (?token=…) are masked. */
export function redactUrl(url: string): string {
  return url.replace(/([?&](?:token|access_token|refresh_token)=)[^&#]*/gi, '$1[redacted]')
}

/**
 * The server's stdout, written once per turn of the event loop: the lines logged during a turn
 * go out in one write instead of one blocking write(2) each, which cost a cheap request much of its
 * time (README, Performance). Bun's FileSink buffers; flush() before exiting.
 */
export function stdoutDestination(): pino.DestinationStream & { flush(): Promise<unknown> } {
  const sink = Bun.stdout.writer()
  let scheduled = false
  const flush = () => {
    scheduled = false
    return Promise.resolve(sink.flush())
  }
  return {
    write(line: string) {
      sink.write(line)
      if (!scheduled) {
        scheduled = true
        setImmediate(flush)
      }
    },
    flush,
  }
}

/**
 * One JSON object per line on stdout: time (ISO), level (a name), msg, and the trace id of the
 * active span when there is one, so logs and traces join up.
 */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: undefined,
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT, censor: '[redacted]' },
      mixin() {
        const traceId = activeTraceId()
        return traceId ? { trace_id: traceId } : {}
      },
    },
    destination,
  )
}

/**
 * A child for hot lines whose fields are fixed and never secret (ids, codes, numbers, route
 * templates): it skips the redaction pass, which @pinojs/redact runs by re-parsing its wildcard
 * paths on every line, a real share of a small request's time and garbage (README, Performance).
 * Every other line keeps redaction, and so does every line with a field a client chose.
 */
export const unredacted = (parent: Logger): Logger => parent.child({}, { redact: [] })

/**
 * Writes one hot, fixed-shape line (the request log's) as pino would: the same JSON (level, time,
 * the fields, msg) to the same destination, at the logger's level. One JSON.stringify of the
 * whole line, where pino stringifies every key and value on its own, merges the mixin and goes
 * through a diagnostics channel Bun cannot tell is unused, a real share of a cheap request's time
 * (README, Performance). Nothing is redacted: the fields must be plain values, never secrets.
 */
export function lineWriter(parent: Logger, msg: string): (level: 'info' | 'error', fields: object) => void {
  const destination = (parent as unknown as Record<symbol, pino.DestinationStream>)[pino.symbols.streamSym]!
  return (level, fields) => {
    if (!parent.isLevelEnabled(level)) return
    destination.write(JSON.stringify({ level, time: new Date().toISOString(), ...fields, msg }) + '\n')
  }
}
