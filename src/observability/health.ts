import { Elysia, t } from 'elysia'
import { ping } from '../db/client'
import type { AppDeps } from '../deps'
import { PUBLIC, served } from '../shared/http'

export const healthRoutes = (deps: Pick<AppDeps, 'sqlite' | 'logger'>) =>
  new Elysia({ detail: { tags: ['observability'] } })
    .get('/health', () => ({ status: 'healthy' as const }), {
      response: served(t.Object({ status: t.Literal('healthy') })),
      detail: { summary: 'Liveness: the process answers (touches nothing else)', ...PUBLIC },
    })
    .get(
      '/ready',
      ({ status }) => {
        try {
          ping(deps.sqlite)
          return status(200, { status: 'ready' as const })
        } catch (error) {
          deps.logger.warn({ err: error }, 'readiness check failed')
          return status(503, { status: 'unavailable' as const, reason: 'database unavailable' })
        }
      },
      {
        response: {
          200: served(t.Object({ status: t.Literal('ready') })),
          503: t.Object({ status: t.Literal('unavailable'), reason: t.String() }),
        },
        detail: { summary: 'Readiness: the database answers a query', ...PUBLIC },
      },
    )
