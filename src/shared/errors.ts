/** A field-level problem, reported with validation errors so clients can point at the input. */
export type FieldIssue = { field: string; message: string }

export type ErrorBody = { error: { code: string; message: string; details?: FieldIssue[] } }

/**
 * Every rule a service enforces fails with one of these. The HTTP layer maps `status`, the
 * WebSocket gateway sends `code` and `message` in an error frame; neither knows the rule.
 */
export class DomainError extends Error {
  /** When retrying may succeed, for a refusal that passes (sent as Retry-After). */
  retryAfterSeconds?: number

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: FieldIssue[],
  ) {
    super(message)
    this.name = new.target.name
  }

  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) } }
  }
}

export class BadRequest extends DomainError {
  constructor(message: string, code = 'bad_request') {
    super(400, code, message)
  }
}

export class Unauthorized extends DomainError {
  constructor(message = 'Authentication required', code = 'unauthorized') {
    super(401, code, message)
  }
}

export class Forbidden extends DomainError {
  constructor(message: string) {
    super(403, 'forbidden', message)
  }
}

export class NotFound extends DomainError {
  constructor(message: string) {
    super(404, 'not_found', message)
  }
}

export class Conflict extends DomainError {
  constructor(message: string) {
    super(409, 'conflict', message)
  }
}

export class PayloadTooLarge extends DomainError {
  constructor(message: string) {
    super(413, 'payload_too_large', message)
  }
}

export class ServiceUnavailable extends DomainError {
  constructor(message: string) {
    super(503, 'busy', message)
  }
}

/**
 * The database cannot take or answer the request right now (disk full, I/O error, corrupt or
 * read-only file, locked too long): the request was sound, so the client may retry. `reason` says
 * which, for readiness and the log; clients get the same message whatever it is.
 */
export class StorageUnavailable extends DomainError {
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(503, 'storage_unavailable', 'Storage is unavailable right now: try again shortly')
    this.retryAfterSeconds = 5
    if (options && 'cause' in options) this.cause = options.cause
  }
}

export class TooManyRequests extends DomainError {
  constructor(message: string, retryAfterSeconds?: number) {
    super(429, 'rate_limited', message)
    this.retryAfterSeconds = retryAfterSeconds
  }
}

/**
 * Field issues as one sentence a person can read: "content is required; title must be a string".
 * The one place it is written, for the API's messages, error frames and the web UI, which names
 * fields by their form labels instead (`labels`).
 */
export function describeIssues(details: readonly FieldIssue[], labels: Readonly<Record<string, string>> = {}): string {
  return details.map((d) => `${labels[d.field] ?? d.field} ${d.message}`).join('; ')
}

/** Input that breaks a rule: 422, with what is wrong with each field, and one sentence saying all of it. */
export class Invalid extends DomainError {
  constructor(details: FieldIssue[]) {
    super(422, 'validation_failed', describeIssues(details) || 'Invalid input', details)
  }

  /** `message` follows the field's name: Invalid.field('title', 'must not be blank') says "title must not be blank". */
  static field(field: string, message: string): Invalid {
    return new Invalid([{ field, message }])
  }
}

export function errorBody(code: string, message: string, details?: FieldIssue[]): ErrorBody {
  return { error: { code, message, ...(details ? { details } : {}) } }
}
