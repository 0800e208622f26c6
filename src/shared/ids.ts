/** Time-ordered UUIDs (v7): unique without coordination and index-friendly. */
export const newId = (): string => Bun.randomUUIDv7()
