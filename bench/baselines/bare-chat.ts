/**
 * Baseline for the WebSocket scenarios: a bare Bun.serve pub/sub chat server, no persistence, no
 * auth. It speaks the part of Pneumatic's protocol the bench uses: a socket subscribes to the
 * topic named by ?conversation= and is told {"type":"ready"}; a {"type":"message"} frame is
 * published to its conversation's topic as {"type":"message","message":…}, to every subscriber
 * including the sender, whose copy is its acknowledgement (as in Pneumatic).
 */
let seq = 0
const server = Bun.serve<{ conversation: string }>({
  port: 0,
  hostname: '127.0.0.1',
  fetch(request, server) {
    const conversation = new URL(request.url).searchParams.get('conversation') ?? 'lobby'
    return server.upgrade(request, { data: { conversation } }) ? undefined : new Response('WebSocket only', { status: 426 })
  },
  websocket: {
    // The same per-socket settings as Pneumatic's gateway, so only the work per message differs.
    maxPayloadLength: 64 * 1024,
    backpressureLimit: 1024 * 1024,
    closeOnBackpressureLimit: true,
    idleTimeout: 960,
    sendPings: true,
    perMessageDeflate: false,
    open(ws) {
      ws.subscribe(ws.data.conversation)
      ws.send('{"type":"ready"}')
    },
    message(_ws, raw) {
      const frame = JSON.parse(String(raw))
      if (frame.type !== 'message') return
      const message = { message_id: frame.message_id, conversation_id: frame.conversation_id, content: frame.content, seq: ++seq }
      server.publish(frame.conversation_id, JSON.stringify({ type: 'message', message }))
    },
  },
})
console.log(JSON.stringify({ msg: 'listening', url: `ws://127.0.0.1:${server.port}` }))
export {} // a module, so its names do not clash with the other baselines' in type-checking
