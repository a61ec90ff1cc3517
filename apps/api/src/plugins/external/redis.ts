import fp from 'fastify-plugin'
import { Redis } from 'ioredis'

declare module 'fastify' {
  interface FastifyInstance {
    redis: Redis
  }
}

/**
 * A Redis client for reads the api makes itself (readiness, heartbeats). Reconnects forever; commands fail fast
 * while it is down rather than queueing.
 */
export default fp(
  async (app, opts: { url: string }) => {
    const redis = new Redis(opts.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(times * 200, 2_000)
    })
    redis.on('error', (err) => app.log.warn({ err: { message: err.message } }, 'redis connection problem'))
    await redis.connect().catch((err: Error) => app.log.warn({ err: { message: err.message } }, 'redis not reachable at start'))
    app.decorate('redis', redis)
    app.addHook('onClose', async () => {
      await redis.quit().catch(() => redis.disconnect())
    })
  },
  { name: 'redis' }
)
