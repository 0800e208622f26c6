import * as conversationService from '../conversations/service'
import type { Store } from '../db/store'
import type { Logger } from '../observability/logger'
import { Forbidden, NotFound } from '../shared/errors'
import type { User } from '../users/model'

/** Messages read per page of an export: one statement, and one chunk of the response. */
export const EXPORT_PAGE_MESSAGES = 200

export type ExportDeps = { store: Store; logger: Logger }

/** An export ready to be sent: its file name and type, and its body, read from the database as it is consumed. */
export type ConversationExport = { filename: string; contentType: string; body: ReadableStream<Uint8Array> }

/** How an export ended, as it is logged. */
type Ending = 'complete' | 'cancelled' | 'no_longer_member' | 'failed'

const encoder = new TextEncoder()

/**
 * A conversation's every message, oldest first (by seq), as NDJSON: each message's JSON, as a
 * history page shows it (content and reactions as they are now, edited_at, deleted_at with the
 * content erased, reply_to), on a line of its own. Members only: 404 and 403 are thrown here,
 * before anything is sent.
 *
 * Its messages are those up to the conversation's last seq when the export began; ones sent after
 * are not in it, so it ends however busy the conversation is. The body is pulled: a page (keyset,
 * after the last seq sent) is read only when the consumer asks for more, so memory stays flat
 * whatever the size, and a slow client slows the reading rather than making it buffer. No
 * transaction or cursor is held between pages, so an export left unread holds nothing in the
 * database; each page shows its messages as they are when it is read.
 *
 * It ends early, and is logged, when the client goes away (the stream is cancelled: nothing more is
 * read), when the reader stops being a member (checked before each page, as every read is), or
 * when the database fails: the body then errors, which ends the response without its last chunk
 * (the connection is reset), so a cut-off export never looks complete.
 */
export async function exportConversation(deps: ExportDeps, actor: User, conversationId: string): Promise<ConversationExport> {
  const { store, logger } = deps
  const conversation = await conversationService.requireMembership(store, actor, conversationId)
  const before = conversation.lastSeq + 1
  const started = performance.now()
  let after = 0
  let messages = 0
  let bytes = 0
  let ended = false

  function end(how: Ending, error?: unknown): void {
    ended = true
    const fields = { conversation_id: conversationId, user_id: actor.id, messages, bytes, ms: Math.round(performance.now() - started) }
    if (how === 'complete') logger.info(fields, 'conversation exported')
    else if (how === 'cancelled') logger.info(fields, 'export stopped: the client went away')
    else if (how === 'no_longer_member') logger.info(fields, 'export stopped: no longer a member')
    else logger.error({ ...fields, err: error }, 'export failed')
  }

  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          await conversationService.requireMember(store, actor, conversationId)
          const page = await store.messages.exportPage({ conversationId, after, before, limit: EXPORT_PAGE_MESSAGES })
          // Cancelled while the page was read: the client is gone, and the stream is closed.
          if (ended) return
          if (page.count > 0) {
            const chunk = encoder.encode(page.ndjson)
            messages += page.count
            bytes += chunk.byteLength
            after = page.lastSeq
            controller.enqueue(chunk)
          }
          if (!page.hasMore) {
            end('complete')
            controller.close()
          }
        } catch (error) {
          if (ended) return
          end(error instanceof Forbidden || error instanceof NotFound ? 'no_longer_member' : 'failed', error)
          // Errored without a reason: Bun resets the connection either way, and would print a
          // reason to stderr besides the log line above.
          controller.error()
        }
      },
      cancel() {
        if (!ended) end('cancelled')
      },
    },
    // Nothing is read ahead of the consumer: each page is read when the last one has been taken.
    { highWaterMark: 0 },
  )
  return { filename: `conversation-${conversation.id}.ndjson`, contentType: 'application/x-ndjson', body }
}
