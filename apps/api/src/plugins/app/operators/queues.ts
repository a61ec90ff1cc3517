import fp from 'fastify-plugin'
import { Queue } from 'bullmq'
import { STREAM_EVENTS_QUEUE } from '@livestream/events'
import { WEBHOOK_DELIVERIES_QUEUE } from '../webhooks/webhooks-service.js'
import { settledWithin } from '../../../settled-within.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The BullMQ queues operators watch (metrics, Bull Board), by name; producers and workers keep their own objects. */
    observedQueues: ReadonlyMap<string, Queue>
  }
}

/**
 * Every BullMQ queue of the deployment: ingest events and webhook deliveries. A new queue is added here once, and shows
 * up in `livestream_queue_jobs` and Bull Board.
 */
export const OBSERVED_QUEUES: readonly string[] = [STREAM_EVENTS_QUEUE, WEBHOOK_DELIVERIES_QUEUE]

/**
 * Read-side handles on the queues, over the api's shared Redis connection (it fails fast while Redis is away, so a
 * scrape errors instead of hanging). BullMQ leaves a connection it was given open at close; the redis plugin owns it.
 */
export default fp(
  async (app, opts: { queuePrefix: string; names?: readonly string[] }) => {
    const queues = new Map<string, Queue>()
    for (const name of opts.names ?? OBSERVED_QUEUES) {
      const queue = new Queue(name, { connection: app.redis, prefix: opts.queuePrefix })
      queue.on('error', (err) => app.log.warn({ err: { message: err.message }, queue: name }, 'queue handle problem'))
      queues.set(name, queue)
    }
    app.decorate('observedQueues', queues)
    // Before the redis plugin's onClose quits the connection they use; bounded, as Redis may be gone.
    app.addHook('preClose', async () => {
      await settledWithin(Promise.all([...queues.values()].map((q) => q.close().catch(() => undefined))), 2_000)
    })
  },
  { name: 'observed-queues', dependencies: ['redis'] }
)
