/** Timestamps are stored as epoch milliseconds and shown as ISO 8601 in UTC. */
export const now = (): number => Date.now()
export const iso = (epochMs: number): string => new Date(epochMs).toISOString()
/** The start of the second `epochMs` falls in. */
export const wholeSecond = (epochMs: number): number => Math.floor(epochMs / 1000) * 1000
