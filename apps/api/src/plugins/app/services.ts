import fp from 'fastify-plugin'
import { Redis } from 'ioredis'
import { createStreamsService, type StreamsService } from './streams/streams-service.js'
import { createStreamCache, type StreamCache } from './streams/stream-cache.js'
import { createUsersService, type UsersService } from './users/users-service.js'
import { createHashGate, type HashGateOptions } from './users/hash-gate.js'
import { createPlatformEvents, type PlatformEvents } from './platform-events.js'
import type { UrlConfig } from './streams/stream-view.js'

declare module 'fastify' {
  interface FastifyInstance {
    streams: StreamsService
    streamCache: StreamCache
    users: UsersService
    /** Committed changes of streams and their audience, for webhooks and live updates to subscribe to. */
    platformEvents: PlatformEvents
  }
}

export interface ServicesOptions {
  redisUrl: string
  queuePrefix: string
  /** How long a stream read may be served from memory; 0 turns the cache off. */
  streamCacheMs: number
  /** Password hashes at once for the process, and how many may wait for a turn. */
  hashing: HashGateOptions
  /** The public URLs of announced stream views. */
  urls: UrlConfig
  /** How long a node's viewer report counts (`VIEWER_REPORT_TTL_MS`). */
  viewerReportTtlMs?: number
}

/**
 * The domain services, built once over the pool, and the stream read cache they share. Changes are announced on a
 * Redis channel to every api and worker process of the deployment; the cache only holds entries while this process
 * is subscribed to it (a dedicated connection, since a subscribing connection can do nothing else).
 */
export default fp(
  async (app, opts: ServicesOptions) => {
    const channel = `${opts.queuePrefix}:streams:changed`
    const cache = createStreamCache({
      ttlMs: opts.streamCacheMs,
      onRead: app.metrics.cacheRead,
      announce: (id) => {
        app.redis.publish(channel, String(id)).catch((err: Error) => app.log.warn({ err: { message: err.message } }, 'stream change not announced'))
      }
    })
    if (opts.streamCacheMs > 0) {
      const sub = new Redis(opts.redisUrl, { lazyConnect: true, maxRetriesPerRequest: null, retryStrategy: (n) => Math.min(n * 200, 2_000) })
      sub.on('error', (err) => app.log.debug({ err: { message: err.message } }, 'stream cache subscriber connection problem'))
      // Whatever was announced while we were away is unknown: start empty each time we are back.
      sub.on('ready', () => {
        sub.subscribe(channel).then(
          () => cache.setListening(true),
          () => cache.setListening(false)
        )
      })
      sub.on('close', () => cache.setListening(false))
      sub.on('message', (_channel: string, message: string) => {
        const id = Number(message)
        if (Number.isSafeInteger(id)) cache.dropped(id)
      })
      await sub.connect().catch(() => {})
      app.addHook('onClose', async () => {
        cache.setListening(false)
        await sub.quit().catch(() => sub.disconnect())
      })
    }
    app.decorate('streamCache', cache)
    const events = createPlatformEvents(app.log)
    app.decorate('platformEvents', events)
    app.decorate('streams', createStreamsService(app.dbClient, {
        cache,
        events,
        urls: opts.urls,
        log: app.log,
        ...(opts.viewerReportTtlMs === undefined ? {} : { viewerReportTtlMs: opts.viewerReportTtlMs })
      }))
    app.decorate('users', createUsersService(app.db, createHashGate(opts.hashing), cache))
  },
  { name: 'services', dependencies: ['db', 'redis', 'metrics'] }
)
