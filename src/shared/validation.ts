import { CloneType, type Static, type TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { Invalid, type FieldIssue } from './errors'

const MAX_ISSUES = 10

/** "/member_ids/0" → "member_ids.0"; the root is "body". */
export const fieldName = (path: string): string => path.replace(/^\//, '').replaceAll('/', '.') || 'body'

/** Length as a person counts it: code points, so an emoji is one character, not two UTF-16 units. */
export function characterCount(text: string, stopAfter = Infinity): number {
  let count = 0
  for (const _ of text) if (++count > stopAfter) break
  return count
}

/** Throws Invalid unless `text` has at most `max` characters (code points). */
export function checkMaxCharacters(field: string, text: string, max: number): void {
  if (characterCount(text, max) > max) throw Invalid.field(field, `must be at most ${max} characters`)
}

/**
 * The path of the first string that is not well-formed UTF-16 (a lone surrogate, which JSON's
 * "\ud800" escape can carry). SQLite stores UTF-8 and would silently replace it, so such text
 * could never round-trip: it is refused instead.
 */
function malformedStringPath(value: unknown, path = ''): string | undefined {
  if (typeof value === 'string') return value.isWellFormed() ? undefined : path
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = malformedStringPath(value[i], `${path}/${i}`)
      if (found !== undefined) return found
    }
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      const found = malformedStringPath(item, `${path}/${key}`)
      if (found !== undefined) return found
    }
  }
  return undefined
}

/**
 * Compiles a schema once and returns a checker that throws Invalid with field details, so
 * services enforce exactly the schemas that routes use for validation and OpenAPI.
 * A schema may carry `error: "..."` (Elysia's convention) for a human message.
 */
export function validator<T extends TSchema>(schema: T): (value: unknown) => Static<T> {
  // A private copy: Elysia edits the schema objects that routes use (additionalProperties).
  const compiled = TypeCompiler.Compile(CloneType(schema))
  return (value) => {
    if (compiled.Check(value)) {
      const malformed = malformedStringPath(value)
      if (malformed !== undefined) throw Invalid.field(fieldName(malformed), 'must be valid Unicode text (it has a lone surrogate)')
      return value
    }
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
