import { closeSync, openSync, readFileSync } from 'node:fs'
import type { Logger } from './logger'

const CHECK_EVERY_MS = 1000

/** The soft limit on open files, from /proc (Linux); null where there is none to read. */
function openFilesLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').match(/^Max open files\s+(\d+)/m)
    return line ? Number(line[1]) : null
  } catch {
    return null
  }
}

/**
 * Says in the log when the process has no file descriptor left, so no connection can be accepted.
 * Bun accepts in native code, and when accept() fails for lack of descriptors it neither reports
 * nor backs off: the listening socket stays readable, the event loop retries it at once, a core
 * spins, and nothing reaches JavaScript. So this probes: once a second it opens /dev/null, and
 * EMFILE or ENFILE there means accept() fails too. One line when it starts, one when it is over.
 */
export function watchFileDescriptors(logger: Logger, everyMs = CHECK_EVERY_MS): () => void {
  // Read now: with every descriptor taken, /proc could not be opened either.
  const limit = openFilesLimit()
  let exhaustedSince: number | null = null
  const timer = setInterval(() => {
    let probe: number
    try {
      probe = openSync('/dev/null', 'r')
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if ((code === 'EMFILE' || code === 'ENFILE') && exhaustedSince === null) {
        exhaustedSince = Date.now()
        logger.error(
          { code, limit, hint: 'raise the open files limit (ulimit -n, LimitNOFILE=) or lower WS_MAX_SOCKETS_PER_USER' },
          'out of file descriptors: new connections cannot be accepted',
        )
      }
      return
    }
    closeSync(probe)
    if (exhaustedSince !== null) {
      logger.warn({ limit, duration_ms: Date.now() - exhaustedSince }, 'file descriptors available again: accepting connections')
      exhaustedSince = null
    }
  }, everyMs)
  timer.unref()
  return () => clearInterval(timer)
}
