/** Time-ordered UUIDs (v7): unique without coordination and index-friendly. */
export const newId = (): string => Bun.randomUUIDv7()

/**
 * Whether a text could be an id of ours (or a client's id, such as a message_id): visible ASCII, at
 * most 128 characters. Anything else names nothing, and is not sent to the database to find out.
 */
export const isPossibleId = (text: string): boolean => /^[\x21-\x7E]{1,128}$/.test(text)
