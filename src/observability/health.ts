import { Elysia, t } from 'elysia'
import type { AppDeps } from '../deps'
import { StorageUnavailable } from '../shared/errors'
import { PUBLIC, served } from '../shared/http'

export const healthRoutes = (deps: Pick<AppDeps, 'store' | 'logger'>) =>
  new Elysia({ detail: { tags: ['observability'] } })
    .get('/health', () => ({ status: 'healthy' as const }), {
      response: served(t.Object({ status: t.Literal('healthy') })),
      detail: { summary: 'Liveness: the process answers (touches nothing else)', ...PUBLIC },
    })
    .get(
      '/ready',
      async ({ status }) => {
        try {
          await deps.store.probe()
          return status(200, { status: 'ready' as const })
        } catch (error) {
          const reason = error instanceof StorageUnavailable ? error.reason : 'database unavailable'
          deps.logger.warn({ err: error instanceof StorageUnavailable && error.cause ? error.cause : error, reason }, 'readiness check failed')
          return status(503, { status: 'unavailable' as const, reason })
        }
      },
      {
        response: {
          200: served(t.Object({ status: t.Literal('ready') })),
          503: t.Object({ status: t.Literal('unavailable'), reason: t.String() }),
        },
        detail: {
          summary: 'Readiness: the database can be read and written now',
          description:
            'Reads every table, commits a one-row write and checks the disk has room; 503 with the reason otherwise (a full disk, an I/O error, a corrupt or read-only file, a lock held too long). A corrupt file, once a request or the probe has met it, is reported until the server restarts.',
          ...PUBLIC,
        },
      },
    )
