import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { documentRoutes } from '../plugins/external/swagger.js'
import { livenessSchema, readinessSchema } from '../schemas/health.js'

/** Liveness (the process answers) and readiness (MySQL and Redis answer). */
const health: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRoute', documentRoutes({ tags: ['health'] }))
  app.get('/healthz', { schema: livenessSchema }, async () => ({ success: true, data: { status: 'ok' as const }, message: 'alive' }))

  app.get('/readyz', { schema: readinessSchema }, async (_request, reply) => {
    const within = <T>(p: Promise<T>) =>
      Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 2_000).unref())])
    const [db, redis] = await Promise.allSettled([within(app.dbClient.ping()), within(app.redis.ping())])
    const state = (r: PromiseSettledResult<unknown>) => (r.status === 'fulfilled' ? ('ok' as const) : ('down' as const))
    const checks = { database: state(db), redis: state(redis) }
    const down = Object.entries(checks).filter(([, v]) => v === 'down').map(([k]) => k)
    if (down.length) {
      return reply.code(503).send({ success: false, data: checks, message: `not ready: ${down.join(', ')} unreachable` })
    }
    return { success: true, data: checks, message: 'ready' }
  })
}
export default health
