import { t } from 'elysia'

export const ErrorResponse = t.Object(
  {
    error: t.Object({
      code: t.String(),
      message: t.String(),
      details: t.Optional(t.Array(t.Object({ field: t.String(), message: t.String() }))),
    }),
  },
  { description: 'Every error has this shape' },
)

/** OpenAPI response entries for the error statuses a route can answer. */
export const errors = <const S extends number>(...statuses: S[]) =>
  Object.fromEntries(statuses.map((s) => [s, ErrorResponse])) as Record<S, typeof ErrorResponse>

/** For routes that need no bearer token (the spec's default is bearerAuth). */
export const PUBLIC = { security: [] as Array<Record<string, string[]>> }
