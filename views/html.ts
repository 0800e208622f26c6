/** Markup that is already safe: produced by `html` itself, never from user input. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value
  }
}

type Value = SafeHtml | string | number | boolean | null | undefined | readonly Value[]

function render(value: Value): string {
  if (value instanceof SafeHtml) return value.value
  if (Array.isArray(value)) return value.map(render).join('')
  if (value === null || value === undefined || value === false) return ''
  // Bun.escapeHTML escapes & < > " ' — safe in text and in quoted attribute values.
  return Bun.escapeHTML(String(value))
}

/**
 * Every interpolated value is escaped unless it is SafeHtml (the result of another `html`).
 * Attribute values must be quoted in the template: `<a href="${url}">`.
 */
export function html(strings: TemplateStringsArray, ...values: Value[]): SafeHtml {
  let out = strings[0]!
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!
  return new SafeHtml(out)
}

/** Joins fragments. */
export const join = (parts: readonly SafeHtml[]): SafeHtml => new SafeHtml(parts.map((p) => p.value).join(''))
