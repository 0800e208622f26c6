import { expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { onPostgres, TEST_SECRET, testDatabase } from '../support/app'
import { fillConversation } from '../support/fill'
import { jsonClient, startServer } from '../support/process'

/**
 * Issue 18: an export streams, so the server's memory stays flat however large the conversation:
 * a real server process on a real database with 100,000 messages in one conversation, read by a
 * client slower than the server, with the server's resident memory (VmRSS) sampled throughout,
 * from after a first, smaller export (what any first request loads and compiles is not counted).
 *
 * Measured on this machine, for the 336.6 MB export here: a peak growth of 2–40 MB on SQLite and
 * 40–52 MB on PostgreSQL. On PostgreSQL that is the driver's buffers, garbage the collector leaves
 * for a while, and it does not grow with the export: 49 MB for a 592 MB one (250,000 messages). So
 * the messages here are long (3,000 characters), to make the export large against that constant.
 * With the pages read whole before answering (one body joined from them), the growth was about
 * twice the export's size (466–566 MB for a 237 MB export): the test fails.
 */

const MESSAGES = 100_000
const FILLER = 'z'.repeat(3000)
/** The client pauses this long after each MiB it reads: far slower than the server can read pages. */
const PAUSE_PER_MIB_MS = 10

const rssKiB = (pid: number): number => Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1])

test(`an export of ${MESSAGES.toLocaleString('en-US')} messages, read slowly, comes whole and in order while the server's RSS grows by less than a quarter of its size (${onPostgres ? 'PostgreSQL' : 'SQLite'})`, async () => {
  await using db = await testDatabase()
  const server = await startServer({ DATABASE_URL: db.url, JWT_SECRET: TEST_SECRET, RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_PER_HOUR: '0' })
  const pid = server.process.pid
  try {
    const api = jsonClient(server.base)
    const password = 'correct horse battery'
    const ids: string[] = []
    const tokens: string[] = []
    for (const username of ['alice', 'bob']) {
      ids.push((await api('/auth/signup', undefined, { username, password })).body.id)
      tokens.push((await api('/auth/login', undefined, { username, password })).body.access_token)
    }
    const [alice, bob] = ids as [string, string]
    const bobToken = tokens[1]!
    const big = (await api('/conversations', tokens[0], { member_ids: [bob] })).body.id as string
    const small = (await api('/conversations', tokens[0], { title: 'Warm-up', member_ids: [bob], is_group: true })).body.id as string
    await fillConversation(db.write, big, alice, MESSAGES, FILLER)
    await fillConversation(db.write, small, alice, 10_000, FILLER)
    const exportOf = (id: string) => fetch(`${server.base}/conversations/${id}/export`, { headers: { authorization: `Bearer ${bobToken}` } })

    // The same path once through, so what a first request loads and compiles is not counted.
    expect((await (await exportOf(small)).text()).split('\n')).toHaveLength(10_001)

    const baseline = rssKiB(pid)
    let peak = baseline
    const sample = () => {
      peak = Math.max(peak, rssKiB(pid))
    }
    const sampler = setInterval(sample, 10)
    const reply = await exportOf(big)
    expect(reply.status).toBe(200)
    expect(reply.headers.get('content-type')).toBe('application/x-ndjson')
    const decoder = new TextDecoder()
    let bytes = 0
    let lines = 0
    let wrong = 0
    let partial = ''
    let sincePause = 0
    for await (const chunk of reply.body!) {
      bytes += chunk.byteLength
      sample()
      const text = partial + decoder.decode(chunk, { stream: true })
      const complete = text.split('\n')
      partial = complete.pop()!
      for (const line of complete) {
        const message = JSON.parse(line)
        lines++
        if (message.seq !== lines || message.content !== `#${lines} ${FILLER}` || message.conversation_id !== big) wrong++
      }
      sincePause += chunk.byteLength
      if (sincePause >= 1 << 20) {
        sincePause = 0
        // Pacing a slow reader (not waiting for anything): the server must not run ahead of it.
        await Bun.sleep(PAUSE_PER_MIB_MS)
      }
    }
    clearInterval(sampler)
    sample()
    expect({ lines, wrong, partial }).toEqual({ lines: MESSAGES, wrong: 0, partial: '' })
    const growth = (peak - baseline) * 1024
    console.info(`export of ${(bytes / 1e6).toFixed(1)} MB: server RSS ${(baseline / 1024).toFixed(1)} MiB before, peak growth ${(growth / 1e6).toFixed(1)} MB`)
    expect(bytes).toBeGreaterThan(MESSAGES * FILLER.length)
    expect(growth).toBeLessThan(bytes / 4)
    const logged = await server.logs.waitFor((l) => l.msg === 'conversation exported' && l.conversation_id === big)
    expect({ messages: logged.messages, bytes: logged.bytes }).toEqual({ messages: MESSAGES, bytes })
  } finally {
    server.process.kill('SIGTERM')
    await server.process.exited
  }
}, 120_000)
