import { Redis } from 'ioredis'
import type { Logger } from './logger.js'

export interface RedisClientOptions {
  url: string
  /** What the client is for (`events`, `heartbeat`): named in its log lines. */
  role: string
  log: Logger
  /**
   * How loudly a connection problem is logged. Every client sees the same outage; one `warn` role per outage is
   * enough, the others log at `debug`.
   */
  problemLevel?: 'warn' | 'debug'
}

/**
 * A Redis client for one role of the node, all built the same way. Fail fast: no offline queue and one retry per
 * command, so a command sent while Redis is away fails at once (the outbox keeps the event, a heartbeat is skipped)
 * instead of waiting behind the reconnect; reconnects back off up to 2 s. Each has an `error` listener, without which
 * ioredis reports every failed reconnect as an unhandled error event.
 */
export function createRedisClient({ url, role, log, problemLevel = 'warn' }: RedisClientOptions): Redis {
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 200, 2_000)
  })
  redis.on('error', (err) => log[problemLevel]({ redis: role, err: { message: err.message } }, 'redis connection problem'))
  return redis
}
