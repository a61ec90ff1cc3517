import type { FastifyPluginAsync } from 'fastify'

/** Liveness (the process answers) and readiness (MySQL and Redis answer). */
const health: FastifyPluginAsync = async (app) => {
  app.get('/healthz', async () => ({ success: true, data: { status: 'ok' }, message: 'alive' }))

  app.get('/readyz', async (_request, reply) => {
    const within = <T>(p: Promise<T>) =>
      Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 2_000).unref())])
    const [db, redis] = await Promise.allSettled([within(app.dbClient.ping()), within(app.redis.ping())])
    const checks = { database: db.status === 'fulfilled' ? 'ok' : 'down', redis: redis.status === 'fulfilled' ? 'ok' : 'down' }
    const down = Object.entries(checks).filter(([, v]) => v === 'down').map(([k]) => k)
    if (down.length) {
      return reply.code(503).send({ success: false, data: checks, message: `not ready: ${down.join(', ')} unreachable` })
    }
    return { success: true, data: checks, message: 'ready' }
  })
}
export default health
