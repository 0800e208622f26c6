/** Timestamps are stored as epoch milliseconds and shown as ISO 8601 in UTC. */
export const now = (): number => Date.now()
export const iso = (epochMs: number): string => new Date(epochMs).toISOString()
/** The start of the second `epochMs` falls in. */
export const wholeSecond = (epochMs: number): number => Math.floor(epochMs / 1000) * 1000
/** A wait in whole seconds, at least one, as Retry-After and error messages give it. */
export const retrySeconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000))
