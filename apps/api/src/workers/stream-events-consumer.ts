import fp from 'fastify-plugin'
import { UnrecoverableError, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { InvalidEventError, parseStreamEvent, STREAM_EVENTS_QUEUE, StreamEventSchema, type StreamEvent } from '@livestream/events'
import type { Outcome, StreamsService } from '../plugins/app/streams/streams-service.js'

export interface ConsumerOptions {
  redisUrl: string
  queuePrefix: string
  concurrency: number
  /** How long a job stays locked to a worker; a crashed worker's jobs are picked up again after it. */
  lockMs: number
}

/**
 * The processor: one job's payload, checked against the event contract, applied by the streams service. A payload that
 * is not a valid event can never succeed: it fails at once instead of being retried; anything else (MySQL down, a leave
 * racing its join) throws and is retried with the job's backoff.
 */
export async function handleStreamEvent(data: unknown, streams: Pick<StreamsService, 'applyEvent'>): Promise<{ event: StreamEvent; outcome: Outcome }> {
  let event: StreamEvent
  try {
    event = parseStreamEvent(data)
  } catch (err) {
    if (err instanceof InvalidEventError) throw new UnrecoverableError(err.message)
    throw err
  }
  return { event, outcome: await streams.applyEvent(event) }
}

const EVENT_TYPES = new Set<string>(StreamEventSchema.anyOf.map((s) => s.properties.type.const))
/** The type of a payload for metrics: one of the contract's, or `invalid` (label values stay a closed set). */
function eventTypeOf(data: unknown): string {
  const type = (data as { type?: unknown } | null)?.type
  return typeof type === 'string' && EVENT_TYPES.has(type) ? type : 'invalid'
}

/**
 * The BullMQ worker applying ingest events. Its connection waits for Redis forever (`maxRetriesPerRequest: null`), so a
 * Redis restart pauses consumption instead of failing it. Closed before the pool it needs.
 */
export default fp(
  async (app, opts: ConsumerOptions) => {
    const connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: null, retryStrategy: (n) => Math.min(n * 200, 2_000) })
    connection.on('error', (err) => app.log.warn({ err: { message: err.message } }, 'consumer redis connection problem'))
    const worker = new Worker(
      STREAM_EVENTS_QUEUE,
      async (job) => {
        let handled: Awaited<ReturnType<typeof handleStreamEvent>>
        try {
          handled = await handleStreamEvent(job.data, app.streams)
        } catch (err) {
          app.metrics.eventApplied(eventTypeOf(job.data), 'failed')
          throw err
        }
        const { event, outcome } = handled
        app.metrics.eventApplied(event.type, outcome)
        app.log.info({ eventId: event.id, type: event.type, streamId: event.streamId, nodeId: event.nodeId, outcome }, 'stream event handled')
        return outcome
      },
      {
        connection,
        prefix: opts.queuePrefix,
        concurrency: opts.concurrency,
        lockDuration: opts.lockMs,
        stalledInterval: opts.lockMs,
        autorun: false
      }
    )
    worker.on('error', (err) => app.log.warn({ err: { message: err.message } }, 'consumer error'))
    worker.on('failed', (job, err) => app.log.warn({ jobId: job?.id, attempts: job?.attemptsMade, err }, 'stream event failed'))
    app.addHook('onReady', () => {
      void worker.run().catch((err: Error) => app.log.error({ err }, 'consumer stopped'))
    })
    // onClose hooks run in registration order; this plugin registers after the db, and `preClose` runs before all.
    app.addHook('preClose', async () => {
      await worker.close()
      await connection.quit().catch(() => connection.disconnect())
    })
  },
  { name: 'stream-events-consumer', dependencies: ['services', 'metrics'] }
)
