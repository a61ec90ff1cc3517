import { Writable } from 'node:stream'
import pino, { type Logger } from 'pino'
import { Redis } from 'ioredis'
import { dropTestPrefix } from '@livestream/events/testing'

/** A pino logger whose lines are kept in memory, for tests that check what was logged. */
export function capturedLogger(level: pino.Level = 'debug'): { log: Logger; lines: string[] } {
  const lines: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString())
      done()
    }
  })
  return { log: pino({ level }, sink), lines }
}

/** Removes a test's Redis keys (queue, heartbeats) once what wrote them is closed. */
export async function dropRedisPrefix(prefix: string, url = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await redis.connect()
    await dropTestPrefix(redis, prefix)
  } finally {
    redis.disconnect()
  }
}
