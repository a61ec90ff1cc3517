import fp from 'fastify-plugin'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import { createWebhookSender } from './webhook-sender.js'
import { createWebhooksService, WEBHOOK_DELIVERIES_QUEUE, type WebhooksService } from './webhooks-service.js'
import type { Resolver, SsrfPolicy } from './ssrf-guard.js'
import { settledWithin } from '../../../settled-within.js'

const ENQUEUE_TIMEOUT_MS = 2_000

declare module 'fastify' {
  interface FastifyInstance {
    /** Webhook endpoints, their fan-out and deliveries. */
    webhooks: WebhooksService
  }
}

export interface WebhooksOptions {
  redisUrl: string
  queuePrefix: string
  policy: SsrfPolicy
  timeoutMs: number
  retryDelaysMs: readonly number[]
  disableAfterFailedEvents: number
  maxEndpointsPerUser: number
  logRowsPerEndpoint: number
  /** Tests only: a resolver instead of the system's. */
  resolve?: Resolver
}

/**
 * The webhooks domain over the pool, the delivery queue's producer (its own Redis connection, failing fast: a fan-out
 * that cannot queue throws, so the event stays in the platform events' outbox for the relay, and the change is not
 * held), and the subscription of the fan-out to platform events. The worker that delivers is `workers/webhook-deliveries.ts`, which may run in another process.
 */
export default fp(
  async (app, opts: WebhooksOptions) => {
    const connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: (n) => Math.min(n * 200, 2_000) })
    connection.on('error', (err) => app.log.warn({ err: { message: err.message } }, 'webhook queue redis connection problem'))
    const queue = new Queue(WEBHOOK_DELIVERIES_QUEUE, { connection, prefix: opts.queuePrefix })
    queue.on('error', (err) => app.log.warn({ err: { message: err.message } }, 'webhook queue error'))
    const sender = createWebhookSender({ policy: opts.policy, timeoutMs: opts.timeoutMs, ...(opts.resolve ? { resolve: opts.resolve } : {}) })
    // BullMQ waits for its connection before adding: with Redis away, every write of an owner with endpoints would
    // hang on its fan-out. Refused at once while the connection is down, and bounded while it is slow; the sink throws,
    // so the event stays in the outbox and the relay queues it once Redis is back (same job ids: no second job).
    const enqueue = {
      addBulk(jobs: Parameters<Queue['addBulk']>[0]) {
        if (['close', 'reconnecting', 'end'].includes(connection.status)) return Promise.reject(new Error('webhook queue unavailable: redis is not connected'))
        let timer: NodeJS.Timeout | undefined
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`webhook queue unavailable: no answer from redis within ${ENQUEUE_TIMEOUT_MS} ms`)), ENQUEUE_TIMEOUT_MS)
        })
        return Promise.race([queue.addBulk(jobs), timeout]).finally(() => clearTimeout(timer))
      }
    }
    const service = createWebhooksService(app.dbClient, {
      sender,
      queue: enqueue,
      policy: opts.policy,
      retryDelaysMs: opts.retryDelaysMs,
      disableAfterFailedEvents: opts.disableAfterFailedEvents,
      maxEndpointsPerUser: opts.maxEndpointsPerUser,
      logRowsPerEndpoint: opts.logRowsPerEndpoint,
      log: app.log,
      ...(opts.resolve ? { resolve: opts.resolve } : {})
    })
    app.decorate('webhooks', service)
    // Throws when the jobs could not be queued: the platform events then keep the event's outbox row.
    app.platformEvents.subscribe(async (event) => {
      await service.fanOut(event)
    })
    app.addHook('onClose', async () => {
      // Bounded: BullMQ's close waits for a connection that, with Redis away, may never come.
      await settledWithin(queue.close(), 2_000)
      await connection.quit().catch(() => connection.disconnect())
      connection.disconnect()
      sender.close()
    })
  },
  { name: 'webhooks', dependencies: ['services', 'db'] }
)
