/** Baseline for the HTTP scenario: a bare Bun.serve answering the same bytes as Pneumatic, with nothing else. */
const bodies: Record<string, string> = { '/health': '{"status":"healthy"}', '/history': process.env.HISTORY_BODY ?? '{}' }
const server = Bun.serve({
  port: 0,
  hostname: '127.0.0.1',
  fetch(request) {
    const body = bodies[new URL(request.url).pathname]
    return body === undefined ? new Response('not found', { status: 404 }) : new Response(body, { headers: { 'content-type': 'application/json' } })
  },
})
console.log(JSON.stringify({ msg: 'listening', url: `http://127.0.0.1:${server.port}` }))
