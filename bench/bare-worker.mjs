// The consumer's ceiling: a BullMQ worker on the same queue, with the same connection and concurrency as ours, whose
// processor does nothing. What it drains per second is what BullMQ and Redis allow on this machine.
import { Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { STREAM_EVENTS_QUEUE } from '@livestream/events'

const connection = new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: null })
const worker = new Worker(STREAM_EVENTS_QUEUE, async () => {}, {
  connection,
  prefix: process.env.QUEUE_PREFIX,
  concurrency: Number(process.env.CONSUMER_CONCURRENCY ?? 16)
})
process.on('SIGTERM', () => worker.close().then(() => connection.quit()).then(() => process.exit(0)))
