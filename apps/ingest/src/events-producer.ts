import { Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import {
  DEFAULT_JOB_OPTIONS,
  jobIdFor,
  newEventId,
  parseStreamEvent,
  STREAM_EVENTS_QUEUE,
  type StreamEvent
} from '@livestream/events'
import type { Logger } from './logger.js'
import { OutboxFile } from './outbox-file.js'
import { createRedisClient } from './redis-client.js'

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never
/** An event as the node describes it; the producer stamps id, node and time. */
export type EventDraft = DistributiveOmit<StreamEvent, 'id' | 'nodeId' | 'at'>

export interface ProducerStats {
  queued: number
  sent: number
  pending: number
  failures: number
}

const SEND_TIMEOUT_MS = 3_000

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`queue did not answer within ${ms} ms`)), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

export interface EventsProducerOptions {
  redisUrl: string
  /** BullMQ key prefix (`QUEUE_PREFIX`). */
  prefix: string
  nodeId: string
  /** Where the node's outbox file lives (`OUTBOX_DIR`); events not yet acknowledged there are sent at start. */
  outboxDir: string
  log: Logger
}

/**
 * Sends events to the queue without ever dropping one. Each event is stamped once (id, node, time), written to the
 * node's outbox file (synced) and kept in memory, in order, until the queue has acknowledged it; while Redis is away
 * the outbox holds and retries with backoff, and what a stop or a crash leaves unsent is sent by the next start of the
 * node, in order, under the same ids. The job id is the event id, so a resend after a lost acknowledgement is dropped
 * by the queue (and by the api's ledger).
 */
export class EventsProducer {
  private readonly outbox: StreamEvent[] = []
  private readonly file: OutboxFile
  private readonly queue: Queue
  private readonly connection: Redis
  private readonly nodeId: string
  private readonly log: Logger
  private flushing: Promise<void> | null = null
  private retryTimer: NodeJS.Timeout | null = null
  private backoffMs = 100
  private closed = false
  readonly stats: ProducerStats = { queued: 0, sent: 0, pending: 0, failures: 0 }

  constructor({ redisUrl, prefix, nodeId, outboxDir, log }: EventsProducerOptions) {
    this.nodeId = nodeId
    this.log = log
    const { outbox: file, pending } = OutboxFile.open(outboxDir, nodeId, log)
    this.file = file
    if (pending.length) {
      this.outbox.push(...pending)
      this.stats.pending = this.outbox.length
      log.info({ pending: pending.length, file: file.path }, 'events kept by an earlier run of this node; sending them first')
    }
    // Fail fast (see createRedisClient): a command while Redis is down errors at once and the outbox keeps the event.
    this.connection = createRedisClient({ url: redisUrl, role: 'events', log })
    this.connection.on('ready', () => this.kick())
    this.queue = new Queue(STREAM_EVENTS_QUEUE, { connection: this.connection, prefix, defaultJobOptions: DEFAULT_JOB_OPTIONS })
    this.queue.on('error', (err) => this.log.warn({ err: { message: err.message } }, 'queue problem'))
  }

  /** Stamps, validates and enqueues an event; returns it. Never throws for Redis trouble. */
  send(draft: EventDraft): StreamEvent {
    const event = parseStreamEvent({ ...draft, id: newEventId(), nodeId: this.nodeId, at: new Date().toISOString() })
    try {
      this.file.append(event)
    } catch (err) {
      this.log.error(
        { eventId: event.id, type: event.type, streamId: event.streamId, err: { message: (err as Error).message } },
        'outbox file not writable: event kept in memory only (lost if the node stops before Redis takes it)'
      )
    }
    this.outbox.push(event)
    this.stats.queued++
    this.stats.pending = this.outbox.length
    this.kick()
    return event
  }

  private kick(): void {
    if (this.closed) return
    this.flushing ??= this.flush().finally(() => {
      this.flushing = null
    })
  }

  private async flush(): Promise<void> {
    while (this.outbox.length > 0) {
      const event = this.outbox[0] as StreamEvent
      try {
        // BullMQ waits for a connection that is down; bound the wait so the outbox can report and retry.
        // A send that completes after its timeout is harmless: the retry has the same job id and is dropped.
        await withTimeout(this.queue.add(event.type, event, { jobId: jobIdFor(event) }), SEND_TIMEOUT_MS)
      } catch (err) {
        this.stats.failures++
        this.log.warn(
          { eventId: event.id, type: event.type, streamId: event.streamId, pending: this.outbox.length, err: { message: (err as Error).message } },
          'event not sent yet; kept in the outbox'
        )
        this.scheduleRetry()
        return
      }
      this.outbox.shift()
      this.file.ack(event.id)
      this.stats.sent++
      this.stats.pending = this.outbox.length
      this.backoffMs = 100
      this.log.info({ eventId: event.id, type: event.type, streamId: event.streamId }, 'event sent')
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null
      this.kick()
    }, this.backoffMs)
    this.backoffMs = Math.min(this.backoffMs * 2, 5_000)
  }

  /** Resolves when Redis answers a PING (for readiness). */
  async ping(): Promise<void> {
    await this.connection.ping()
  }

  /** Events not yet acknowledged by the queue. */
  get pending(): readonly StreamEvent[] {
    return this.outbox
  }

  /**
   * Tries to send what is left for up to `timeoutMs`, then closes. Returns how many events could not be sent: they
   * stay in the outbox file and go out at the next start of this node.
   */
  async close(timeoutMs = 10_000): Promise<number> {
    const deadline = Date.now() + timeoutMs
    while (this.outbox.length > 0 && Date.now() < deadline && !this.closed) {
      this.kick()
      await Promise.race([this.flushing, new Promise((r) => setTimeout(r, 200))])
    }
    this.closed = true
    if (this.retryTimer) clearTimeout(this.retryTimer)
    const left = this.outbox.length
    if (left) this.log.warn({ left, file: this.file.path }, 'closing with events the queue has not acknowledged; kept in the outbox file for the next start')
    this.file.close()
    // Neither may wait for a Redis that is gone.
    await withTimeout(this.queue.close(), SEND_TIMEOUT_MS).catch(() => undefined)
    await withTimeout(this.connection.quit(), SEND_TIMEOUT_MS).catch(() => undefined)
    this.connection.disconnect()
    return left
  }
}
