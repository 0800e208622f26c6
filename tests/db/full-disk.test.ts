import { Database } from 'bun:sqlite'
import { describe, expect, test } from 'bun:test'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { MIN_FREE_BYTES } from '../../src/db/storage'
import { mountTmpfs, skipMountTests } from '../support/privileges'
import { startServer, type ServerProcess } from '../support/process'
import { TestSocket } from '../support/ws'

const DISK_BYTES = 8 * 1024 * 1024

type Reply = { status: number; retryAfter: string | null; body: any }

/** Polls /ready until it answers `status`, at most `attempts` times, a tenth of a second apart. */
async function untilReady(base: string, status: number, attempts = 100): Promise<Reply> {
  let last: Reply | undefined
  for (let attempt = 0; attempt < attempts; attempt++) {
    const reply = await fetch(`${base}/ready`)
    last = { status: reply.status, retryAfter: reply.headers.get('retry-after'), body: await reply.json() }
    if (last.status === status) return last
    await Bun.sleep(100)
  }
  throw new Error(`/ready never answered ${status}; last: ${JSON.stringify(last)}`)
}

/** JSON requests to whichever server is running now (it is restarted in the tests). */
function client(current: () => ServerProcess) {
  return async (path: string, token?: string, body?: unknown): Promise<Reply> => {
    const reply = await fetch(current().base + path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    return { status: reply.status, retryAfter: reply.headers.get('retry-after'), body: await reply.json() }
  }
}

/** Alice and Bob signed up, Alice logged in, and a conversation of theirs. */
async function chat(api: ReturnType<typeof client>) {
  for (const username of ['alice', 'bob']) expect((await api('/auth/signup', undefined, { username, password: 'password123' })).status).toBe(201)
  const login = (await api('/auth/login', undefined, { username: 'alice', password: 'password123' })).body
  const token = login.access_token as string
  const bob = (await api('/users', token)).body.users[0].id as string
  const conversationId = (await api('/conversations', token, { member_ids: [bob] })).body.id as string
  return { token, refreshToken: login.refresh_token as string, conversationId }
}

/** Every message of a conversation, oldest first, page by page. */
async function everyMessage(api: ReturnType<typeof client>, token: string, conversationId: string): Promise<{ message_id: string; seq: number }[]> {
  const all: { message_id: string; seq: number }[] = []
  for (let page = 0; page < 1000; page++) {
    const { messages } = (await api(`/conversations/${conversationId}/messages?limit=200&after=${all.at(-1)?.seq ?? 0}`, token)).body
    if (messages.length === 0) return all
    all.push(...messages)
  }
  throw new Error('more pages than expected')
}

const serverEnv = (dir: string, writer: string) => ({
  DATABASE_URL: `sqlite:${join(dir, 'chat.db')}`,
  JWT_SECRET: 'full-disk-test-secret-of-32-chars-or-more',
  MESSAGE_WRITER: writer,
  RATE_LIMIT_PER_MINUTE: '0',
  RATE_LIMIT_PER_HOUR: '0',
  SIGNUP_LIMIT_PER_IP: '0',
})

describe.skipIf(skipMountTests)('a full disk under a running server', () => {
  test.each(['inline', 'worker'] as const)(
    'with the %s writer: writes get 503 storage_unavailable with Retry-After and /ready says why; reads go on; nothing acknowledged is lost; once space returns it recovers by itself',
    async (writer) => {
      using disk = mountTmpfs(DISK_BYTES)
      const env = serverEnv(disk.dir, writer)
      let server: ServerProcess = await startServer(env)
      try {
        const api = client(() => server)
        const { token, refreshToken, conversationId } = await chat(api)
        const message = (id: string) => ({ message_id: id, conversation_id: conversationId, content: `message ${id}` })

        const acknowledged: string[] = []
        for (const id of ['before-1', 'before-2', 'before-3']) {
          expect((await api('/messages', token, message(id))).status).toBe(201)
          acknowledged.push(id)
        }
        using socket = await TestSocket.open(`${server.base.replace('http', 'ws')}/ws?token=${token}`)
        expect((await untilReady(server.base, 200)).body).toEqual({ status: 'ready' })

        const filler = disk.fill()
        expect(disk.free()).toBeLessThan(MIN_FREE_BYTES)

        // Sends over REST (a burst, so the group-commit writer fails whole batches) and WebSocket.
        const refusedIds = Array.from({ length: 20 }, (_, i) => `during-${i}`)
        const refused = await Promise.all(refusedIds.map((id) => api('/messages', token, message(id))))
        for (const reply of refused) {
          expect(reply).toEqual({ status: 503, retryAfter: '5', body: { error: { code: 'storage_unavailable', message: expect.any(String) } } })
        }
        socket.send({ type: 'message', ...message('during-ws') })
        expect(await socket.next((f) => f.type === 'error' || f.type === 'message')).toMatchObject({ type: 'error', error: { code: 'storage_unavailable' }, message_id: 'during-ws' })
        // Other writes too: a signup, a login (it stores a session), a refresh (it rotates the token).
        expect(await api('/auth/signup', undefined, { username: 'carol', password: 'password123' })).toMatchObject({ status: 503, retryAfter: '5', body: { error: { code: 'storage_unavailable' } } })
        expect(await api('/auth/login', undefined, { username: 'bob', password: 'password123' })).toMatchObject({ status: 503, body: { error: { code: 'storage_unavailable' } } })
        expect(await api('/auth/refresh', undefined, { refresh_token: refreshToken })).toMatchObject({ status: 503, body: { error: { code: 'storage_unavailable' } } })
        expect(await untilReady(server.base, 503)).toMatchObject({ body: { status: 'unavailable', reason: 'the database file is on a full disk' } })
        // Reads need no space: history is served, and the process is alive and healthy.
        expect((await api(`/conversations/${conversationId}/messages`, token)).body.messages.map((m: { message_id: string }) => m.message_id)).toEqual(acknowledged)
        expect((await api('/health')).status).toBe(200)
        expect(server.process.exitCode).toBeNull()

        rmSync(filler)
        expect(await untilReady(server.base, 200)).toMatchObject({ body: { status: 'ready' } })
        // Without a restart: the refused sends, retried with their message_ids, are stored once each.
        for (const id of refusedIds) {
          expect((await api('/messages', token, message(id))).status).toBe(201)
          acknowledged.push(id)
        }
        socket.send({ type: 'message', ...message('during-ws') })
        expect(await socket.next((f) => f.type === 'error' || (f.type === 'message' && f.message.message_id === 'during-ws'))).toMatchObject({ type: 'message', message: { message_id: 'during-ws' } })
        acknowledged.push('during-ws')
        expect((await api('/auth/signup', undefined, { username: 'carol', password: 'password123' })).status).toBe(201)
        // The refused refresh changed nothing: the same refresh token still works, once.
        expect((await api('/auth/refresh', undefined, { refresh_token: refreshToken })).status).toBe(200)

        // Every acknowledged message exactly once, numbered without a gap, in the file after a restart.
        socket.ws.close()
        server.process.kill('SIGTERM')
        expect(await server.process.exited).toBe(0)
        server = await startServer(env)
        const stored = await everyMessage(api, token, conversationId)
        expect(stored.map((m) => m.message_id)).toEqual(acknowledged)
        expect(stored.map((m) => m.seq)).toEqual(acknowledged.map((_, i) => i + 1))
      } finally {
        server.process.kill('SIGKILL')
        await server.process.exited
      }
    },
    60_000,
  )

  test('after a checkpoint, SQLite writes into the WAL space it already has: sends on a full disk are stored or refused with 503, never a 500, /ready says the disk is full, and every acknowledged one survives a restart', async () => {
    using disk = mountTmpfs(DISK_BYTES)
    const env = serverEnv(disk.dir, 'inline')
    let server: ServerProcess = await startServer(env)
    try {
      const api = client(() => server)
      const { token, conversationId } = await chat(api)
      const acknowledged = new Set<string>()
      const sendAll = async (prefix: string, count: number) => {
        const replies = await Promise.all(
          Array.from({ length: count }, async (_, i) => {
            const id = `${prefix}-${i}`
            const reply = await api('/messages', token, { message_id: id, conversation_id: conversationId, content: 'x'.repeat(2000) })
            if (reply.status === 201) acknowledged.add(id)
            return reply.status
          }),
        )
        return replies
      }
      expect(new Set(await sendAll('before', 300))).toEqual(new Set([201]))
      // What the automatic checkpoint does every so often: copy the WAL into the file, after which
      // the next write starts the WAL again from its beginning, in space it already has.
      const other = new Database(join(disk.dir, 'chat.db'))
      expect(other.query('PRAGMA wal_checkpoint(PASSIVE)').get()).toMatchObject({ busy: 0 })
      other.close()
      const filler = disk.fill()
      const during = await sendAll('during', 2000)
      expect(new Set(during)).toEqual(new Set([201, 503]))
      expect((await api('/ready')).body).toEqual({ status: 'unavailable', reason: 'the database file is on a full disk' })
      rmSync(filler)
      server.process.kill('SIGTERM')
      expect(await server.process.exited).toBe(0)
      server = await startServer(env)
      const stored = await everyMessage(api, token, conversationId)
      expect(new Set(stored.map((m) => m.message_id))).toEqual(acknowledged)
      expect(stored).toHaveLength(acknowledged.size)
      expect(stored.map((m) => m.seq)).toEqual(stored.map((_, i) => i + 1))
    } finally {
      server.process.kill('SIGKILL')
      await server.process.exited
    }
  }, 60_000)
})
