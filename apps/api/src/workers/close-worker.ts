import type { Worker } from 'bullmq'
import type { Redis } from 'ioredis'

/**
 * Closes a BullMQ worker and its connection within `graceMs`. A worker waits for its jobs in flight, and, with Redis
 * away, for a connection that may never come: past the grace it is closed by force and its connection dropped. Jobs it
 * held are taken up again by another worker once their lock lapses (delivery is at least once).
 */
export async function closeWorker(worker: Worker, connection: Redis, graceMs = 5_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const closed = await Promise.race([
    worker.close().then(() => true, () => true),
    new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), graceMs)
      timer.unref()
    })
  ])
  clearTimeout(timer)
  if (!closed) void worker.close(true).catch(() => undefined)
  await connection.quit().catch(() => connection.disconnect())
  connection.disconnect()
}
