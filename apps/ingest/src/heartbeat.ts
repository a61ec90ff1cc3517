import { Redis } from 'ioredis'
import { heartbeatKey, type NodeHeartbeat } from '@livestream/events'
import type { Logger } from './logger.js'

/**
 * Every `intervalMs`, writes this node's heartbeat (the streams it holds) into a Redis hash the api's reaper reads.
 * Outside the queue on purpose: a backlog of events must never make a healthy node look dead.
 */
export class Heartbeat {
  private readonly redis: Redis
  private timer: NodeJS.Timeout | null = null

  constructor(
    redisUrl: string,
    private readonly prefix: string,
    private readonly nodeId: string,
    private readonly playbackBaseUrl: string,
    private readonly intervalMs: number,
    private readonly streamIds: () => number[],
    private readonly log: Logger
  ) {
    this.redis = new Redis(redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: (n) => Math.min(n * 200, 2_000) })
    this.redis.on('error', (err) => this.log.debug({ err: { message: err.message } }, 'heartbeat redis problem'))
  }

  start(): void {
    const beat = () => void this.beat()
    // The first beat waits for the connection (no offline queue: a beat sent while connecting would only fail).
    if (this.redis.status === 'ready') beat()
    else this.redis.once('ready', beat)
    this.timer = setInterval(beat, this.intervalMs)
  }

  async beat(): Promise<void> {
    const hb: NodeHeartbeat = {
      nodeId: this.nodeId,
      playbackBaseUrl: this.playbackBaseUrl,
      at: Date.now(),
      streamIds: this.streamIds()
    }
    try {
      await this.redis.hset(heartbeatKey(this.prefix), this.nodeId, JSON.stringify(hb))
    } catch (err) {
      this.log.warn({ err: { message: (err as Error).message } }, 'heartbeat not written')
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    await this.redis.quit().catch(() => this.redis.disconnect())
  }
}
