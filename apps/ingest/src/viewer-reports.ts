import type { EventDraft } from './events-producer.js'
import type { Logger } from './logger.js'
import type { MediaWindows } from './media/window.js'
import { ViewerCounter, viewerTracking, type ViewerCounterOptions, type ViewerTracking } from './viewers.js'

/** A stream this node reports viewers of. */
export interface ReportedStream {
  streamId: number
  playbackId: string
  /** The `sessionId` of the stream's events. */
  sessionId: string
}

export interface ViewerReporterOptions {
  counter: ViewerCounter
  /** The streams live here now (announced). */
  streams: () => Iterable<ReportedStream>
  send: (draft: EventDraft) => void
  /** Each stream's count is looked at this often, and sent when it changed. */
  intervalMs: number
  /** An unchanged non-zero count is sent again after this long, so that the api keeps counting it. */
  refreshMs: number
  log?: Logger
  now?: () => number
}

/**
 * Turns counts into `stream.viewers` events: every `intervalMs`, a stream whose count changed since its last report is
 * reported (so at most one event per stream per interval), and an unchanged count above zero every `refreshMs`. A
 * stream that is new here is reported once it has a viewer. The sweep of the counter runs on the same tick.
 */
export class ViewerReporter {
  private readonly last = new Map<number, { viewers: number; at: number }>()
  private timer: NodeJS.Timeout | null = null
  private sweeper: NodeJS.Timeout | null = null
  private readonly now: () => number

  constructor(private readonly opts: ViewerReporterOptions) {
    this.now = opts.now ?? Date.now
  }

  start(): void {
    this.sweeper = setInterval(() => this.opts.counter.sweep(), 1_000)
    this.sweeper.unref()
    this.timer = setInterval(() => this.tick(), this.opts.intervalMs)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    if (this.sweeper) clearInterval(this.sweeper)
    this.timer = this.sweeper = null
  }

  /** One round of reports; returns how many went out. */
  tick(): number {
    const now = this.now()
    const held = new Set<number>()
    let sent = 0
    for (const s of this.opts.streams()) {
      held.add(s.streamId)
      const viewers = this.opts.counter.count(s.playbackId)
      const last = this.last.get(s.streamId)
      const changed = viewers !== (last?.viewers ?? 0)
      const due = viewers > 0 && last !== undefined && now - last.at >= this.opts.refreshMs
      if (!changed && !due) continue
      this.opts.send({ type: 'stream.viewers', streamId: s.streamId, sessionId: s.sessionId, viewers })
      this.last.set(s.streamId, { viewers, at: now })
      sent++
    }
    for (const id of this.last.keys()) if (!held.has(id)) this.last.delete(id)
    if (sent) this.opts.log?.debug({ sent }, 'viewer counts reported')
    return sent
  }
}

export interface ViewerCountingOptions extends Omit<ViewerCounterOptions, 'live' | 'now'> {
  reportMs: number
  refreshMs: number
  trustProxyHops: number
  /** The live windows: a playback id is live here while its window is open and not ended. */
  windows: MediaWindows
  streams: ViewerReporterOptions['streams']
  send: ViewerReporterOptions['send']
  log: Logger
}

/** A node's viewer counting, assembled: what media HTTP feeds, and the reporter to start and stop with the node. */
export function viewerCounting(opts: ViewerCountingOptions): { tracking: ViewerTracking; reporter: ViewerReporter } {
  const counter = new ViewerCounter({
    windowMs: opts.windowMs,
    perAddress: opts.perAddress,
    maxPerStream: opts.maxPerStream,
    maxSessions: opts.maxSessions,
    live: (playbackId) => {
      const w = opts.windows.get(playbackId)
      return w !== undefined && !w.ended
    }
  })
  return {
    tracking: viewerTracking(counter, opts.trustProxyHops),
    reporter: new ViewerReporter({
      counter,
      streams: opts.streams,
      send: opts.send,
      intervalMs: opts.reportMs,
      refreshMs: opts.refreshMs,
      log: opts.log.child({ component: 'viewers' })
    })
  }
}
