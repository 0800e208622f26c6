import type { Static, TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { Invalid, type FieldIssue } from './errors'

const MAX_ISSUES = 10

/** "/member_ids/0" → "member_ids.0"; the root is "body". */
export const fieldName = (path: string): string => path.replace(/^\//, '').replaceAll('/', '.') || 'body'

/**
 * Compiles a schema once and returns a checker that throws Invalid with field details, so
 * services enforce exactly the schemas that routes use for validation and OpenAPI.
 * A schema may carry `error: "..."` (Elysia's convention) for a human message.
 */
export function validator<T extends TSchema>(schema: T): (value: unknown) => Static<T> {
  const compiled = TypeCompiler.Compile(schema)
  return (value) => {
    if (compiled.Check(value)) return value
    const details: FieldIssue[] = []
    for (const issue of compiled.Errors(value)) {
      const field = fieldName(issue.path)
      if (details.some((d) => d.field === field)) continue
      const custom = (issue.schema as { error?: unknown }).error
      details.push({ field, message: typeof custom === 'string' ? custom : issue.message })
      if (details.length >= MAX_ISSUES) break
    }
    throw new Invalid(details.map((d) => `${d.field}: ${d.message}`).join('; '), details)
  }
}
