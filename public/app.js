// Pneumatic's web UI: the few things HTML and htmx cannot do on their own.
// No inline script anywhere, so the page runs under a CSP without 'unsafe-inline' or 'unsafe-eval'.
;(() => {
  const openConversation = () => document.getElementById('conversation')?.dataset.conversationId
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
    if (e.target === scroller()) atBottom = e.target.scrollHeight - e.target.scrollTop - e.target.clientHeight < 80
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

  new MutationObserver((records) => {
    let grew = false
    for (const r of records) {
      for (const node of r.addedNodes) {
        if (node.nodeType !== 1) continue
        if (node.classList.contains('conversation')) keepTopmostRow(node)
        localize(node.parentElement ?? node)
        if (node.classList.contains('message') && node === node.parentElement?.lastElementChild) grew = true
        // A fresh composer after a send keeps the focus where the writer was.
        if (node.id === 'composer') node.querySelector('textarea')?.focus()
      }
    }
    if (grew && atBottom) toBottom()
  }).observe(document.body, { childList: true, subtree: true })

  // Enter sends; Shift+Enter (or an IME composition) adds a line.
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' || e.shiftKey || e.isComposing) return
    const box = e.target
    if (!(box instanceof HTMLTextAreaElement) || !box.closest('#composer')) return
    e.preventDefault()
    box.form.requestSubmit()
  })

  // After every (re)connection, fetch what the live socket may have missed. Messages merge by id
  // and seq, so whatever also arrives live is never doubled.
  let connections = 0
  document.addEventListener('htmx:ws:after:connection', () => {
    connections++
    document.body.dataset.live = 'connected'
    const id = openConversation()
    if (id) {
      const last = document.querySelector('.message-list')?.lastElementChild?.dataset.seq ?? '0'
      htmx.ajax('GET', `/c/${encodeURIComponent(id)}/messages?after=${encodeURIComponent(last)}`, { swap: 'none' })
    }
    if (connections > 1) htmx.ajax('GET', '/ui/sidebar', { swap: 'none' })
  })
  document.addEventListener('htmx:ws:close', () => {
    document.body.dataset.live = 'reconnecting'
  })

  document.addEventListener('DOMContentLoaded', () => {
    localize(document)
    toBottom()
    // Ready to type on a desktop; on a phone, focusing would throw up the keyboard unasked.
    if (matchMedia('(pointer: fine)').matches) document.querySelector('#composer textarea')?.focus()
  })
})()
