// Pneumatic's web UI: who is typing in the open conversation, and who is online.
// Both arrive over the page's live socket (views/presence.ts); the composer says when its writer types.
;(() => {
  // The server passes on one typing signal per person and conversation every 2 s: saying it every
  // 3 s while typing keeps the others' line shown (5 s each) without being dropped.
  const SAY_EVERY_MS = 3000

  /** The page's live connection (hx-ws): typing goes out on it, as a client's typing frame. */
  let live = null
  let connections = 0
  document.addEventListener('htmx:ws:after:connection', (e) => {
    live = e.detail.connection
    // Who came and went while the page was away was told to nobody here: the dots are read again.
    if (++connections > 1) void refreshDots().catch(() => {})
  })

  let saidAt = 0
  document.addEventListener('input', (e) => {
    const box = e.target
    if (!(box instanceof HTMLTextAreaElement) || !box.closest('#composer') || box.value.trim() === '') return
    const conversationId = document.getElementById('conversation')?.dataset.conversationId
    const socket = live?.socket
    if (!conversationId || socket?.readyState !== WebSocket.OPEN || Date.now() - saidAt < SAY_EVERY_MS) return
    saidAt = Date.now()
    socket.send(JSON.stringify({ type: 'typing', conversation_id: conversationId }))
  })

  // Someone's line replaces their previous one and goes by itself after the line's data-shown-ms.
  const lineOf = (list, userId) => list.querySelector(`[data-user="${CSS.escape(userId)}"]`)
  function typing(list, fragment) {
    const shown = []
    for (const item of [...fragment.children]) {
      lineOf(list, item.dataset.user)?.remove()
      list.append(item)
      setTimeout(() => item.remove(), Number(list.dataset.shownMs) || 5000)
      shown.push(item)
    }
    return shown
  }

  // Their message arriving ends their line.
  new MutationObserver((records) => {
    for (const r of records) {
      for (const node of r.addedNodes) {
        if (node.nodeType !== 1 || !node.classList.contains('message') || node !== node.parentElement?.lastElementChild) continue
        const list = document.querySelector('#conversation .typing')
        if (list && node.dataset.sender) lineOf(list, node.dataset.sender)?.remove()
      }
    }
  }).observe(document.body, { childList: true, subtree: true })

  function setDots(userId, online) {
    for (const dot of document.querySelectorAll(`.presence[data-user="${CSS.escape(userId)}"]`)) {
      dot.dataset.online = String(online)
      dot.title = online ? 'Online' : 'Offline'
    }
  }

  function presence(fragment) {
    for (const item of fragment.children) setDots(item.dataset.user, item.dataset.online === 'true')
    return []
  }

  /** Every dot as the server has it now (GET /ui/presence: a presence push for everyone). */
  function refreshDots() {
    if (!document.querySelector('.presence')) return Promise.resolve()
    return htmx.ajax('GET', '/ui/presence', { swap: 'none' })
  }

  htmx.registerExtension('presence', {
    handle_swap(style, target, fragment) {
      if (style === 'typing') return typing(target, fragment)
      if (style === 'presence') return presence(fragment)
      return false
    },
  })
})()
