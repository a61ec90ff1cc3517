import type { Redis } from 'ioredis'
import { heartbeatKey, type NodeHeartbeat } from '@livestream/events'
import type { Logger } from './logger.js'
import { everyNoOverlap, type NoOverlapTimer } from './no-overlap-timer.js'
import { createRedisClient } from './redis-client.js'

export interface HeartbeatOptions {
  redisUrl: string
  /** The queue's key prefix (`QUEUE_PREFIX`): the heartbeat hash lives beside the queue. */
  prefix: string
  nodeId: string
  /** Where players fetch this node's media; the api hands it out with each stream. */
  playbackBaseUrl: string
  intervalMs: number
  /** The streams this node holds now. */
  streamIds: () => number[]
  log: Logger
}

/**
 * Every `intervalMs`, writes this node's heartbeat (the streams it holds) into a Redis hash the api's reaper reads.
 * Outside the queue on purpose: a backlog of events must never make a healthy node look dead.
 */
export class Heartbeat {
  private readonly redis: Redis
  private readonly opts: HeartbeatOptions
  private timer: NoOverlapTimer | null = null

  constructor(opts: HeartbeatOptions) {
    this.opts = opts
    // Debug: the events client warns about the same Redis outage.
    this.redis = createRedisClient({ url: opts.redisUrl, role: 'heartbeat', log: opts.log, problemLevel: 'debug' })
  }

  start(): void {
    const timer = everyNoOverlap(() => this.beat(), this.opts.intervalMs, () => undefined) // beat() never rejects
    this.timer = timer
    // The first beat waits for the connection (no offline queue: a beat sent while connecting would only fail).
    if (this.redis.status === 'ready') void timer.run()
    else this.redis.once('ready', () => void timer.run())
  }

  async beat(): Promise<void> {
    const { prefix, nodeId, playbackBaseUrl, streamIds, log } = this.opts
    const hb: NodeHeartbeat = { nodeId, playbackBaseUrl, at: Date.now(), streamIds: streamIds() }
    try {
      await this.redis.hset(heartbeatKey(prefix), nodeId, JSON.stringify(hb))
    } catch (err) {
      log.warn({ err: { message: (err as Error).message } }, 'heartbeat not written')
    }
  }

  async stop(): Promise<void> {
    this.timer?.stop()
    await this.redis.quit().catch(() => this.redis.disconnect())
  }
}
