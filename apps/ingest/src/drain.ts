import type { Logger } from './logger.js'

export interface DrainOptions {
  /** Publishers are disconnected one at a time over this long (ms). */
  drainMs: number
  /** How long a disconnected publisher has to land on another node. */
  reconnectWindowMs: number
  /** Refuses new publishes (in-flight verdicts settle first). */
  stopAccepting: () => Promise<void>
  /** Streams whose publisher is connected here now. */
  publishing: () => number[]
  /** Cuts one stream's publisher; its encoder reconnects, through the load balancer, to another node. */
  disconnect: (streamId: number) => void
  /** How many streams this node still holds (publishing, or waiting for a publisher to come back). */
  held: () => number
  /** Called once, when the node holds nothing or at the deadline: the node closes. */
  done: (why: 'empty' | 'deadline') => void
  log: Logger
  /** How often to look whether the node is empty (tests). */
  checkMs?: number
}

export interface DrainStatus {
  draining: boolean
  /** Epoch ms. */
  startedAt: number | null
  /** When the node closes at the latest (epoch ms). */
  deadline: number | null
  /** Publishers disconnected by the drain so far, and how many it will disconnect in all. */
  disconnected: number
  toDisconnect: number
  /** Streams still held. */
  held: number
}

/**
 * Scaling in without ending a stream. Once started (SIGTERM, or an operator's `POST /admin/drain`):
 * - the node is not ready (`/readyz` 503), so the load balancer sends new RTMP connections and viewers elsewhere;
 * - new publishes are refused;
 * - the publishers connected at that moment are disconnected one at a time, spread over `drainMs`: each encoder
 *   reconnects (OBS does on its own), lands on another node, and the stream goes on there on the same playlists
 *   (the playback directory's timeline); this node lets go of it once the other node claims it;
 * - the node closes when it holds nothing, or at the latest `drainMs + reconnectWindowMs` after the start.
 * One at a time, so that the other nodes take the reconnects as a trickle, not a herd. Starting it again is a no-op.
 */
export class Drain {
  private startedAt: number | null = null
  private deadline: number | null = null
  private disconnected = 0
  private toDisconnect = 0
  private timers: NodeJS.Timeout[] = []
  private finished = false

  constructor(private readonly opts: DrainOptions) {}

  get draining(): boolean {
    return this.startedAt !== null
  }

  status(): DrainStatus {
    return {
      draining: this.draining,
      startedAt: this.startedAt,
      deadline: this.deadline,
      disconnected: this.disconnected,
      toDisconnect: this.toDisconnect,
      held: this.opts.held()
    }
  }

  /** Starts the drain; `started` is false when it was already under way. */
  start(why: string): { started: boolean; status: DrainStatus } {
    if (this.startedAt !== null) return { started: false, status: this.status() }
    const { drainMs, reconnectWindowMs, log } = this.opts
    this.startedAt = Date.now()
    this.deadline = this.startedAt + drainMs + reconnectWindowMs
    const ids = this.opts.publishing()
    this.toDisconnect = ids.length
    log.info({ why, publishers: ids.length, drainMs, deadline: new Date(this.deadline).toISOString() }, 'draining: no new publishes; publishers leave one at a time')
    // The deadline holds whatever happens next (a publish verdict that never settles included).
    this.timers.push(setTimeout(() => this.finish('deadline'), drainMs + reconnectWindowMs))
    void this.opts.stopAccepting().then(() => {
      if (this.finished) return
      // The first goes at once, the last a step before drainMs ends: each gets the rest of the time to land elsewhere.
      const step = ids.length > 0 ? drainMs / ids.length : 0
      ids.forEach((id, i) => {
        this.timers.push(
          setTimeout(() => {
            this.disconnected++
            log.info({ streamId: id, n: this.disconnected, of: ids.length }, 'drain: publisher disconnected to reconnect elsewhere')
            this.opts.disconnect(id)
          }, i * step)
        )
      })
      const check = setInterval(() => {
        if (this.disconnected === ids.length && this.opts.held() === 0) this.finish('empty')
      }, this.opts.checkMs ?? 250)
      this.timers.push(check as unknown as NodeJS.Timeout)
    })
    return { started: true, status: this.status() }
  }

  private finish(why: 'empty' | 'deadline'): void {
    if (this.finished) return
    this.finished = true
    this.stop()
    const held = this.opts.held()
    this.opts.log[why === 'empty' ? 'info' : 'warn']({ why, held, tookMs: Date.now() - (this.startedAt as number) }, 'drain over: the node closes')
    this.opts.done(why)
  }

  /** Cancels the timers (the node closes for another reason). */
  stop(): void {
    for (const t of this.timers) clearTimeout(t)
    this.timers = []
  }
}
