import { html, SafeHtml } from './html'

const HTMX = '/static/vendor/htmx-4.0.1'

// htmx config: no indicator stylesheet (we ship our own CSS), and only the extensions we load
// (public/app.js registers "pneumatic": the merge of messages and the page's change positions;
// public/presence.js "presence": typing and online dots).
const HTMX_CONFIG = 'includeIndicatorCSS:false, extensions:"ws,pneumatic,presence"'

/** Ids we put into the page's CSS are our own UUIDs; anything else is left out rather than escaped. */
export const cssId = (id: string): string | null => (/^[A-Za-z0-9-]{1,64}$/.test(id) ? id : null)

/**
 * <style> is raw text: entities are not decoded there, so escaping would break the CSS. The rules
 * are built from cssId() values only; anything that could close the element is refused outright.
 */
function styleText(css: string): SafeHtml {
  if (css.includes('<')) throw new Error('page style must not contain "<"')
  return new SafeHtml(css)
}

export type PageOptions = {
  title: string
  /** CSP nonce for this response; also allows the page's own <style>. */
  nonce: string
  /** CSS rules that depend on who is looking (built from ids only). */
  style?: string
  body: SafeHtml
  /** Load htmx and the app script (the chat page); the sign-in page works without them. */
  interactive?: boolean
}

export function page(opts: PageOptions): string {
  return `<!doctype html>${html`<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${opts.title}</title>
  <meta name="htmx-config" content="${HTMX_CONFIG}">
  <link rel="stylesheet" href="/static/app.css">
  <link rel="icon" href="data:,">
  ${opts.style ? html`<style nonce="${opts.nonce}">${styleText(opts.style)}</style>` : ''}
</head>
<body>
${opts.body}
${
  // At the end of <body> and not deferred: htmx then finds the document still loading and waits
  // for DOMContentLoaded, by which time hx-ws and app.js have both registered. With
  // `defer`, htmx could start before hx-ws and the page would never go live.
  opts.interactive
    ? html`<script src="${HTMX}/htmx.min.js"></script>
<script src="${HTMX}/hx-ws.min.js"></script>
<script src="/static/app.js"></script>
<script src="/static/presence.js"></script>`
    : ''
}
</body>
</html>`}`
}
