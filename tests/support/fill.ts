import { onPostgres } from './app'

type Sql = (text: string, ...params: unknown[]) => Promise<unknown[]>

// 1, 2, …, count as rows of one column `i`; its one parameter (count) comes last in the statement.
const SERIES = onPostgres
  ? 'generate_series(1, CAST(? AS bigint)) AS n(i)'
  : '(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) SELECT i FROM n)'

/**
 * Appends `count` messages from `senderId` to a conversation with one SQL statement, as if they had
 * been sent one after another: seq and created_at (ms) count on from the conversation's last, and
 * its counters move on as sending them would have moved them. For tests that need a long history
 * in seconds rather than minutes. Message n's content is `#n ` and then `filler`.
 */
export async function fillConversation(sql: Sql, conversationId: string, senderId: string, count: number, filler = ''): Promise<void> {
  const [row] = (await sql('SELECT last_seq FROM conversations WHERE id = ?', conversationId)) as Array<{ last_seq: number }>
  const last = Number(row!.last_seq)
  const key = `fill-${crypto.randomUUID()}-`
  const startedAt = Date.now()
  await sql(
    `INSERT INTO messages (id, conversation_id, seq, sender_id, message_id, content, created_at)
     SELECT CAST(? AS text) || CAST(i AS text), CAST(? AS text), CAST(? AS bigint) + i, CAST(? AS text), CAST(? AS text) || CAST(i AS text),
       '#' || CAST(CAST(? AS bigint) + i AS text) || ' ' || CAST(? AS text), CAST(? AS bigint) + i
     FROM ${SERIES}`,
    key,
    conversationId,
    last,
    senderId,
    key,
    last,
    filler,
    startedAt,
    count,
  )
  await sql(
    'UPDATE conversations SET last_seq = last_seq + ?, last_event_seq = last_event_seq + ?, last_message_at = ? WHERE id = ?',
    count,
    count,
    startedAt + count,
    conversationId,
  )
}
