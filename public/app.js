// Pneumatic's web UI: the few things HTML and htmx cannot do on their own.
// No inline script anywhere, so the page runs under a CSP without 'unsafe-inline' or 'unsafe-eval'.
;(() => {
  const pane = () => document.getElementById('conversation')
  const scroller = () => document.getElementById('message-scroll')

  // Timestamps arrive in UTC; show them in the reader's own time zone.
  const time = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' })
  const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' })
  const today = new Date().toDateString()
  function localize(root) {
    for (const el of root.querySelectorAll('time[datetime]:not([data-local])')) {
      const at = new Date(el.dateTime)
      el.textContent = at.toDateString() === today ? time.format(at) : dateTime.format(at)
      el.title = at.toLocaleString()
      el.dataset.local = ''
    }
  }

  // Follow new messages while the reader is at the bottom; leave them be when reading back.
  let atBottom = true
  document.addEventListener('scroll', (e) => {
    if (e.target !== scroller()) return
    atBottom = e.target.scrollHeight - e.target.scrollTop - e.target.clientHeight < 80
    if (atBottom) markRead()
  }, true)
  const toBottom = () => {
    const s = scroller()
    if (s) s.scrollTop = s.scrollHeight
  }

  // A conversation's row is in the list once. A page of older conversations fetched before a
  // message moved one of them to the top can still carry it: the row already on top is the newer.
  function keepTopmostRow(row) {
    const list = row.parentElement
    if (list?.id !== 'conversation-list' || !row.id) return
    const same = list.querySelectorAll(`:scope > li[id="${CSS.escape(row.id)}"]`)
    for (let i = 1; i < same.length; i++) same[i].remove()
  }

  // A form the server answered with a refusal comes back with its popover marked to stay open.
  function reopen(root) {
    for (const popover of root.querySelectorAll('[popover][data-open]')) {
      popover.removeAttribute('data-open')
      if (!popover.matches(':popover-open')) popover.showPopover()
      popover.querySelector('input:not([type="hidden"])')?.focus()
    }
  }

  new MutationObserver((records) => {
    let grew = false
    for (const r of records) {
      for (const node of r.addedNodes) {
        if (node.nodeType !== 1) continue
        if (node.classList.contains('conversation')) keepTopmostRow(node)
        localize(node.parentElement ?? node)
        reopen(node)
        if (node.classList.contains('message') && node === node.parentElement?.lastElementChild) grew = true
        // A fresh composer (after a send, or to reply) keeps the focus where the writer is.
        if (node.id === 'composer') node.querySelector('textarea')?.focus()
      }
    }
    if (grew && atBottom) {
      toBottom()
      markRead()
    }
  }).observe(document.body, { childList: true, subtree: true })

  // ---- Read up to what the reader has seen -----------------------------------------------------
  // The open conversation is read up to the newest message shown while the page is visible and at
  // the bottom: its read position moves there (POST /c/{id}/read), and the push that follows clears
  // the unread count on every page of the reader, on every device, and tells the others.
  let readSent = { id: null, seq: 0 }
  function markRead() {
    const p = pane()
    if (!p || document.visibilityState !== 'visible' || !atBottom || p.querySelector('.left-notice')) return
    const id = p.dataset.conversationId
    let seq = 0
    for (const item of document.getElementById(`messages-${id}`)?.children ?? []) seq = Math.max(seq, Number(item.dataset.seq) || 0)
    if (seq === 0 || (readSent.id === id && seq <= readSent.seq)) return
    readSent = { id, seq }
    const failed = () => {
      if (readSent.id === id && readSent.seq === seq) readSent = { id, seq: 0 }
    }
    fetch(`/c/${encodeURIComponent(id)}/read`, {
      method: 'POST',
      headers: { 'HX-Request': 'true', 'content-type': 'application/x-www-form-urlencoded' },
      body: `seq=${seq}`,
    }).then((response) => response.ok || failed(), failed)
  }
  document.addEventListener('visibilitychange', markRead)

  // ---- Messages merged, never doubled, never older than shown ----------------------------------
  // Every rendering of a message carries a version: a change of its conversation (event_seq) it
  // shows at least. A live push, the answer to one's own action and a catch-up can cross on the
  // way; of two renders the page keeps the newer, so a late one never undoes a change.

  const version = (el) => Number(el.dataset.version || 0)

  /**
   * Replaces an element the viewer may be using (a message, a group's header) with its new
   * rendering, keeping what they have open: popovers, text they typed, an edit in progress (the
   * message changes around it), and the focus.
   */
  function replaceKeeping(old, fresh) {
    const typed = []
    for (const field of old.querySelectorAll('input[id], textarea[id]')) {
      if (field.type !== 'hidden' && field.value !== field.defaultValue) typed.push([field.id, field.value])
    }
    const open = [...old.querySelectorAll('[popover]')].filter((p) => p.matches(':popover-open')).map((p) => p.id)
    const active = document.activeElement
    const focused = old.contains(active) ? { id: active.id, self: active === old, start: active.selectionStart, end: active.selectionEnd } : null
    const editing = old.querySelector('.edit-form')
    const content = fresh.querySelector(':scope > .content')
    if (editing && content) content.replaceWith(editing)
    old.replaceWith(fresh)
    for (const [id, value] of typed) {
      const field = document.getElementById(id)
      if (field && fresh.contains(field) && field.value !== value) field.value = value
    }
    for (const id of open) {
      const popover = document.getElementById(id)
      if (popover && fresh.contains(popover) && !popover.matches(':popover-open')) popover.showPopover()
    }
    if (focused?.self) fresh.focus({ preventScroll: true })
    else if (focused?.id) {
      const again = document.getElementById(focused.id)
      if (again && fresh.contains(again)) {
        again.focus({ preventScroll: true })
        if (typeof focused.start === 'number') again.setSelectionRange?.(focused.start, focused.end)
      }
    }
  }

  // Quotes of a message say what it says now: an edit or a deletion reaches every reply shown (and
  // the composer's, when replying to it), whether or not the message itself is loaded.
  const EXCERPT_CHARACTERS = 140 // as views/message.ts excerpt()
  function excerpt(text) {
    const characters = Array.from(text.replace(/\s+/g, ' ').trim())
    return characters.length > EXCERPT_CHARACTERS ? `${characters.slice(0, EXCERPT_CHARACTERS).join('').trimEnd()}…` : characters.join('')
  }
  function requote(item) {
    const deleted = item.classList.contains('deleted')
    const content = item.querySelector(':scope > .content')?.textContent
    if (!deleted && content === undefined) return // shown in its edit form: its text is not in it
    const text = deleted ? 'This message was deleted' : excerpt(content)
    for (const quote of document.querySelectorAll(`.quote[data-reply-to="${CSS.escape(item.id.slice('msg-'.length))}"] .quote-text`)) {
      if (quote.textContent !== text) quote.textContent = text
    }
  }

  /**
   * Merges rendered messages into a conversation's list: each replaces the one with its id (if not
   * older), or is put in seq order. `existing`: only replace (an edit to a message not loaded is
   * not added). `fresh`: the answer to the viewer's own action, which closes its forms.
   */
  function merge(list, fragment, spec) {
    const placed = []
    for (const item of [...fragment.children]) {
      const current = item.id ? document.getElementById(item.id) : null
      if (current) {
        if (version(item) < version(current)) continue
        if (spec.fresh) {
          const hadFocus = current.contains(document.activeElement)
          current.replaceWith(item)
          if (hadFocus) item.focus({ preventScroll: true })
        } else replaceKeeping(current, item)
        placed.push(item)
      } else if (!spec.existing) {
        const seq = Number(item.dataset.seq)
        const next = [...list.children].find((el) => Number(el.dataset.seq) > seq)
        list.insertBefore(item, next ?? null)
        placed.push(item)
      }
      requote(item)
    }
    return placed
  }

  // ---- Where the page stands in the open conversation's change stream --------------------------
  // #conversation[data-event-seq] is the highest event_seq up to which the page has applied every
  // change: from the page's own reading, then each push and catch-up (their <hx-position> says
  // which changes they bring). Pushes that arrive past a gap wait in `ahead` until it is filled.

  const ahead = new Set()
  function advance(conversationId, after, through) {
    const p = pane()
    if (!p || p.dataset.conversationId !== conversationId || !(through >= after)) return
    let at = Number(p.dataset.eventSeq || 0)
    if (after <= at) at = Math.max(at, through)
    else for (let n = after + 1; n <= through; n++) ahead.add(n)
    while (ahead.delete(at + 1)) at++
    for (const n of ahead) if (n <= at) ahead.delete(n)
    p.dataset.eventSeq = String(at)
  }

  htmx.registerExtension('pneumatic', {
    handle_swap(style, target, fragment, spec) {
      if (style === 'merge') return merge(target, fragment, spec)
      if (style === 'refresh') {
        const fresh = fragment.firstElementChild
        if (!fresh) return []
        replaceKeeping(target, fresh)
        return [fresh]
      }
      return false
    },
    htmx_process_position(mark) {
      advance(mark.getAttribute('conversation'), Number(mark.getAttribute('after')), Number(mark.getAttribute('through')))
    },
  })

  /**
   * Asks for the changes after the page's position, page after page, and applies them as pushes
   * are applied. Past retention (410) the page loads the conversation again; a viewer no longer in
   * the group is told so by the answer, and nothing more is asked.
   */
  async function catchUpOnce() {
    const live = document.getElementById('live')
    for (let pages = 0; pages < 100; pages++) {
      const p = pane()
      if (!p || p.querySelector('.left-notice')) return
      const url = `/c/${encodeURIComponent(p.dataset.conversationId)}/events?after=${encodeURIComponent(p.dataset.eventSeq || '0')}`
      const response = await fetch(url, { headers: { 'HX-Request': 'true' } })
      if (response.status === 410) return location.reload()
      if (response.status === 401) return location.assign('/')
      await htmx.swap({ sourceElement: live, target: live, swap: 'none', text: await response.text(), transition: false })
      if (!response.ok || response.headers.get('x-has-more') !== 'true') return
    }
  }
  // One at a time: a reconnect during a catch-up asks again after it, from where it got to.
  let catching = Promise.resolve()
  const catchUp = () => {
    catching = catching.then(catchUpOnce).catch(() => {})
  }

  // After every (re)connection, fetch what the live socket may have missed: the changes of the open
  // conversation after the page's position, and (after a drop) the conversation list again.
  let connections = 0
  document.addEventListener('htmx:ws:after:connection', () => {
    connections++
    document.body.dataset.live = 'connected'
    if (pane()) catchUp()
    if (connections > 1) htmx.ajax('GET', '/ui/sidebar', { swap: 'none' })
  })
  document.addEventListener('htmx:ws:close', () => {
    document.body.dataset.live = 'reconnecting'
  })

  // ---- Keys, quotes, touch ---------------------------------------------------------------------

  // In the composer Enter sends, Shift+Enter (or an IME composition) adds a line, Esc cancels a
  // reply; editing a message, Enter saves and Esc cancels.
  document.addEventListener('keydown', (e) => {
    const box = e.target
    if (!(box instanceof HTMLTextAreaElement) || e.isComposing) return
    const edit = box.closest('.edit-form')
    if (e.key === 'Escape') {
      const cancel = edit ? edit.querySelector('a.cancel') : box.closest('#composer')?.querySelector('a.cancel-reply')
      if (!cancel) return
      e.preventDefault()
      cancel.click()
      return
    }
    if (e.key !== 'Enter' || e.shiftKey || !(edit || box.closest('#composer'))) return
    e.preventDefault()
    box.form.requestSubmit()
  })

  // A quote scrolls to the message it quotes and highlights it, loading older pages until it is there.
  const MAX_PAGES_BACK = 40
  async function reveal(id) {
    let target = document.getElementById(`msg-${id}`)
    for (let i = 0; !target && i < MAX_PAGES_BACK; i++) {
      const older = document.querySelector('#load-older button[hx-get]')
      if (!older) break
      await htmx.ajax('GET', older.getAttribute('hx-get'), { swap: 'none' })
      target = document.getElementById(`msg-${id}`)
    }
    if (!target) return
    target.scrollIntoView({ block: 'center' })
    target.classList.remove('highlight')
    void target.offsetWidth // restart the animation
    target.classList.add('highlight')
    target.focus({ preventScroll: true })
  }
  document.addEventListener('click', (e) => {
    const quote = e.target instanceof Element && e.target.closest('a.quote[data-reply-to]')
    if (!quote || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey) return
    e.preventDefault()
    void reveal(quote.dataset.replyTo)
  })
  // A search result in the conversation already open is shown there, as a quote's original is; one
  // in another conversation opens it at /c/<id>#msg-<message id>, and the page shows it on load.
  document.addEventListener('click', (e) => {
    const result = e.target instanceof Element && e.target.closest('.search-result a[data-message-id]')
    if (!result || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey) return
    if (pane()?.dataset.conversationId !== result.dataset.conversationId) return
    e.preventDefault()
    void reveal(result.dataset.messageId)
  })
  document.addEventListener('animationend', (e) => {
    if (e.animationName === 'highlight') e.target.classList.remove('highlight')
  })

  // A choice made in a popover (an emoji, Delete, Add, Rename) closes it at once; a refusal comes
  // back with it marked to open again.
  document.addEventListener('submit', (e) => {
    const popover = e.target instanceof HTMLFormElement && e.target.hasAttribute('hx-post') ? e.target.closest('[popover]') : null
    if (popover?.matches(':popover-open')) popover.hidePopover()
  }, true)

  // A long press on a message (touch) shows its actions, as a tap does, instead of the browser's menu.
  document.addEventListener('contextmenu', (e) => {
    const message = e.target instanceof Element && e.target.closest('li.message')
    if (!message || !matchMedia('(hover: none)').matches) return
    e.preventDefault()
    message.focus()
  })

  document.addEventListener('DOMContentLoaded', () => {
    localize(document)
    reopen(document)
    // Opened at a message (a search result, a link): shown and highlighted, and nothing is marked
    // read for it (the reader is not at the bottom); otherwise the newest, read.
    const linked = /^#msg-(.+)$/.exec(location.hash)
    if (linked && pane()) void reveal(decodeURIComponent(linked[1]))
    else {
      toBottom()
      markRead()
    }
    // Ready to type on a desktop (in the edit form, when the page opened on one); on a phone,
    // focusing would throw up the keyboard unasked.
    if (matchMedia('(pointer: fine)').matches) (document.querySelector('.edit-form textarea') ?? document.querySelector('#composer textarea'))?.focus()
  })
})()
