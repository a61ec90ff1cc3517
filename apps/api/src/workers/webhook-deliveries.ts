import fp from 'fastify-plugin'
import { UnrecoverableError, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import {
  WEBHOOK_BACKOFF,
  WEBHOOK_DELIVERIES_QUEUE,
  webhookBackoff,
  type DeliveryJobData,
  type WebhooksService
} from '../plugins/app/webhooks/webhooks-service.js'

export interface WebhookWorkerOptions {
  redisUrl: string
  queuePrefix: string
  concurrency: number
  /** How long a job stays locked to a worker; a killed worker's deliveries are taken up again after it. */
  lockMs: number
  retryDelaysMs: readonly number[]
}

function isJobData(d: unknown): d is DeliveryJobData {
  const o = d as Partial<DeliveryJobData> | null
  return (
    typeof o === 'object' &&
    o !== null &&
    Number.isSafeInteger(o.endpointId) &&
    typeof o.eventId === 'string' &&
    typeof o.eventType === 'string' &&
    typeof o.body === 'string'
  )
}

/**
 * The processor: one attempt of one delivery. A failed attempt throws, so BullMQ retries the job after the backoff;
 * the last one's failure ends it (kept among the failed jobs). A payload that is not a delivery can never succeed.
 */
export async function handleWebhookDelivery(
  job: { data: unknown; attemptsMade: number },
  webhooks: Pick<WebhooksService, 'deliver'>
): Promise<string> {
  if (!isJobData(job.data)) throw new UnrecoverableError('not a webhook delivery job')
  const outcome = await webhooks.deliver(job.data, job.attemptsMade + 1)
  if (outcome.status === 'failed') throw new Error(outcome.result?.error ?? 'delivery failed')
  return outcome.status
}

/**
 * The BullMQ worker delivering webhooks, with the retry schedule as its backoff strategy. Its connection waits for
 * Redis (`maxRetriesPerRequest: null`). A job whose worker was killed mid-delivery is taken up again once its lock
 * expires; it may stall a few times (a crash loop) before BullMQ gives up on it. Closed before the pool it needs.
 */
export default fp(
  async (app, opts: WebhookWorkerOptions) => {
    const connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: null, retryStrategy: (n) => Math.min(n * 200, 2_000) })
    connection.on('error', (err) => app.log.warn({ err: { message: err.message } }, 'webhook worker redis connection problem'))
    const backoff = webhookBackoff(opts.retryDelaysMs)
    const worker = new Worker(
      WEBHOOK_DELIVERIES_QUEUE,
      async (job) => {
        const status = await handleWebhookDelivery(job, app.webhooks)
        const d = job.data as DeliveryJobData
        app.log.debug({ eventId: d.eventId, endpointId: d.endpointId, attempt: job.attemptsMade + 1, status }, 'webhook delivery')
        return status
      },
      {
        connection,
        prefix: opts.queuePrefix,
        concurrency: opts.concurrency,
        lockDuration: opts.lockMs,
        stalledInterval: opts.lockMs,
        maxStalledCount: 5,
        autorun: false,
        settings: { backoffStrategy: (attemptsMade, type) => (type === WEBHOOK_BACKOFF ? backoff(attemptsMade) : 1_000) }
      }
    )
    worker.on('error', (err) => app.log.warn({ err: { message: err.message } }, 'webhook worker error'))
    worker.on('failed', (job, err) => {
      const d = job?.data as DeliveryJobData | undefined
      app.log.info({ eventId: d?.eventId, endpointId: d?.endpointId, attempt: job?.attemptsMade, err: { message: err.message } }, 'webhook delivery attempt failed')
    })
    app.addHook('onReady', () => {
      void worker.run().catch((err: Error) => app.log.error({ err }, 'webhook worker stopped'))
    })
    app.addHook('preClose', async () => {
      await worker.close()
      await connection.quit().catch(() => connection.disconnect())
    })
  },
  { name: 'webhook-deliveries-worker', dependencies: ['webhooks'] }
)
