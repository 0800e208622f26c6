import { CloneType, type Static, type TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors'
import { Invalid, type FieldIssue } from './errors'

const MAX_ISSUES = 10

/** "/member_ids/0" → "member_ids.0"; the root is "body". */
export const fieldName = (path: string): string => path.replace(/^\//, '').replaceAll('/', '.') || 'body'

type Schema = Record<string, unknown>
const plural = (n: unknown, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`

/** What a value of a schema is, in words; strings Elysia coerces to numbers are numbers to a reader. */
function kindOf(schema: Schema): string {
  if (schema.type === 'string' && schema.format === 'integer') return 'a whole number'
  if (schema.type === 'string' && schema.format === 'numeric') return 'a number'
  switch (schema.type) {
    case 'string':
      return 'a string'
    case 'integer':
      return 'a whole number'
    case 'number':
      return 'a number'
    case 'boolean':
      return 'true or false'
    case 'array':
      return 'a list'
    case 'object':
      return 'a JSON object'
    case 'null':
      return 'null'
    default:
      return 'something else'
  }
}

const WRONG_TYPE: ReadonlySet<ValueErrorType> = new Set([
  ValueErrorType.String,
  ValueErrorType.Integer,
  ValueErrorType.Number,
  ValueErrorType.Boolean,
  ValueErrorType.Array,
  ValueErrorType.Object,
  ValueErrorType.Null,
])
const isWrongType = (issue: ValueError) =>
  WRONG_TYPE.has(issue.type) || (issue.type === ValueErrorType.StringFormat && kindOf(issue.schema as Schema) !== 'a string')

/**
 * A value that fits none of a union's variants. The variant it failed only on a rule (a range, a
 * length) is the one it was meant for, so that rule is what is wrong; failing every variant on its
 * type, it is told which types would do: "must be a string or null".
 */
function unionMessage(issue: ValueError): string {
  const firsts = issue.errors.map((variant) => variant.First()).filter((e): e is ValueError => e !== undefined)
  const near = firsts.find((e) => !isWrongType(e))
  if (near) return issueMessage(near)
  return `must be ${[...new Set(firsts.map((e) => kindOf(e.schema as Schema)))].join(' or ')}`
}

/**
 * What is wrong with a value, as a person would say it after the field's name: "is required",
 * "must be a whole number". The one place a schema violation becomes words, for the REST API
 * (Elysia's own validation and the services' validator), WebSocket error frames and the web UI.
 * A schema's own `error` (Elysia's convention) wins, except for a missing field: whatever rule a
 * field has, leaving it out is "is required".
 */
export function issueMessage(issue: ValueError): string {
  const schema = issue.schema as Schema
  // Elysia's validator reports a missing field as the wrong type of an undefined value.
  if (issue.type === ValueErrorType.ObjectRequiredProperty || (issue.value === undefined && issue.path !== '')) return 'is required'
  if (typeof schema.error === 'string') return schema.error
  if (isWrongType(issue)) return `must be ${kindOf(schema)}`
  switch (issue.type) {
    case ValueErrorType.Union:
      return unionMessage(issue)
    case ValueErrorType.StringMinLength:
      return schema.minLength === 1 ? 'must not be empty' : `must be at least ${plural(schema.minLength, 'character')}`
    case ValueErrorType.StringMaxLength:
      return `must be at most ${plural(schema.maxLength, 'character')}`
    case ValueErrorType.StringPattern:
    case ValueErrorType.StringFormat:
      return 'is not in the expected format'
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum:
      return `must be at least ${schema.minimum}`
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum:
      return `must be at most ${schema.maximum}`
    case ValueErrorType.ArrayMinItems:
      return `must have at least ${plural(schema.minItems, 'item')}`
    case ValueErrorType.ArrayMaxItems:
      return `must have at most ${plural(schema.maxItems, 'item')}`
    case ValueErrorType.ObjectAdditionalProperties:
      return 'is not a known field'
    case ValueErrorType.Literal:
      return `must be ${JSON.stringify(schema.const)}`
    default:
      return 'is not valid'
  }
}

/** Length as a person counts it: code points, so an emoji is one character, not two UTF-16 units. */
function characterCount(text: string, stopAfter = Infinity): number {
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
      details.push({ field, message: issueMessage(issue) })
      if (details.length >= MAX_ISSUES) break
    }
    throw new Invalid(details)
  }
}
