import type { Worker } from 'bullmq'
import type { Redis } from 'ioredis'
import { settledWithin } from '../settled-within.js'

/**
 * Closes a BullMQ worker and its connection within `graceMs`. A worker waits for its jobs in flight, and, with Redis
 * away, for a connection that may never come: past the grace it is closed by force and its connection dropped. Jobs it
 * held are taken up again by another worker once their lock lapses (delivery is at least once).
 */
export async function closeWorker(worker: Worker, connection: Redis, graceMs = 5_000): Promise<void> {
  if (!(await settledWithin(worker.close(), graceMs))) void worker.close(true).catch(() => undefined)
  await connection.quit().catch(() => connection.disconnect())
  connection.disconnect()
}
