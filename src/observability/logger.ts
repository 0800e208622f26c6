import pino, { type Logger } from 'pino'
import type { LogLevel } from '../config'

export type { Logger }

/** One JSON object per line on stdout: time (ISO), level (a name, not a number), msg. */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: undefined,
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  )
}
