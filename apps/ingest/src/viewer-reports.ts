import type { EventDraft } from './events-producer.js'
import type { Logger } from './logger.js'
import type { MediaWindows } from './media/window.js'
import type { Holder } from './playback-directory.js'
import { ViewerCounter, viewerTracking, type ProxiedStream, type ViewerCounterOptions, type ViewerTracking } from './viewers.js'

/** A stream this node reports viewers of. */
export interface ReportedStream {
  streamId: number
  playbackId: string
  /** The `sessionId` of the stream's events. */
  sessionId: string
}

/**
 * The streams this node proxies players to (the edge side of "one playback URL"), by playback id: it counts those
 * players itself, since their requests arrive here with their own address and `vs`, and reports them under its own
 * node id as the stream's viewers on this node. A stream is followed from its first proxied request until its players
 * left (a last report of 0 went out) or its holder record went away.
 */
export class EdgeStreams {
  private readonly streams = new Map<string, ProxiedStream>()

  /** A request for `playbackId` is being proxied to `stream`'s holder. */
  follow(playbackId: string, stream: ProxiedStream): void {
    const known = this.streams.get(playbackId)
    if (known && known.streamId === stream.streamId && known.sessionId === stream.sessionId && known.nodeId === stream.nodeId) return
    this.streams.set(playbackId, { nodeId: stream.nodeId, streamId: stream.streamId, sessionId: stream.sessionId })
  }

  has(playbackId: string): boolean {
    return this.streams.has(playbackId)
  }

  get(playbackId: string): ProxiedStream | undefined {
    return this.streams.get(playbackId)
  }

  unfollow(playbackId: string): void {
    this.streams.delete(playbackId)
  }

  ids(): string[] {
    return [...this.streams.keys()]
  }

  get size(): number {
    return this.streams.size
  }

  entries(): IterableIterator<[string, ProxiedStream]> {
    return this.streams.entries()
  }
}

export interface ViewerReporterOptions {
  counter: ViewerCounter
  /** The streams live here now (announced). */
  streams: () => Iterable<ReportedStream>
  /** The streams held elsewhere whose players this node proxies (and counts); absent: none. */
  edge?: EdgeStreams
  /**
   * The current holder records of playback ids (the playback directory's `holdersOf`): a followed stream whose record
   * is gone, names another stream, or names this node, is no longer counted as proxied here.
   */
  holders?: (playbackIds: string[]) => Promise<Map<string, Holder | null>>
  /** This node's id (a record naming it means the stream is live here, counted as such). */
  nodeId?: string
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
  private busy = false

  constructor(private readonly opts: ViewerReporterOptions) {
    this.now = opts.now ?? Date.now
  }

  start(): void {
    this.sweeper = setInterval(() => this.opts.counter.sweep(), 1_000)
    this.sweeper.unref()
    this.timer = setInterval(() => void this.round(), this.opts.intervalMs)
    this.timer.unref()
  }

  /** One timer round: the holders of the followed streams checked (one Redis read, only when there are any), then `tick`. */
  async round(): Promise<number> {
    if (this.busy) return 0
    this.busy = true
    try {
      await this.checkHolders()
      return this.tick()
    } finally {
      this.busy = false
    }
  }

  /**
   * Stops counting the proxied players of followed streams whose holder record went away (the stream ended or its
   * node died) or names another stream: their sessions are forgotten now, so the next `tick` reports
   * 0 for them (if it reported more) and lets them go. A failed read changes nothing (sessions still expire).
   */
  async checkHolders(): Promise<void> {
    const edge = this.opts.edge
    if (!edge || edge.size === 0 || !this.opts.holders) return
    const ids = edge.ids()
    let holders: Map<string, Holder | null>
    try {
      holders = await this.opts.holders(ids)
    } catch (err) {
      this.opts.log?.debug({ err: { message: (err as Error).message } }, 'holders of proxied streams not checked')
      return
    }
    for (const id of ids) {
      const followed = edge.get(id)
      if (!followed || !holders.has(id)) continue
      const holder = holders.get(id) ?? null
      // Still held elsewhere, or held here now (its sessions are this node's own viewers: the tick drops the entry).
      if (holder && holder.stream?.streamId === followed.streamId) continue
      this.opts.counter.forget(id)
      this.opts.log?.debug({ playbackId: id, streamId: followed.streamId }, 'proxied stream no longer held where it was: its players here are no longer counted')
    }
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
    const report = (streamId: number, sessionId: string, viewers: number): boolean => {
      const last = this.last.get(streamId)
      const changed = viewers !== (last?.viewers ?? 0)
      const due = viewers > 0 && last !== undefined && now - last.at >= this.opts.refreshMs
      if (!changed && !due) return false
      this.opts.send({ type: 'stream.viewers', streamId, sessionId, viewers })
      this.last.set(streamId, { viewers, at: now })
      sent++
      return true
    }
    const livePlaybackIds = new Set<string>()
    for (const s of this.opts.streams()) {
      held.add(s.streamId)
      livePlaybackIds.add(s.playbackId)
      report(s.streamId, s.sessionId, this.opts.counter.count(s.playbackId))
    }
    const edge = this.opts.edge
    if (edge) {
      for (const [playbackId, s] of [...edge.entries()]) {
        // Live here meanwhile (it moved to this node): its players are this node's own, reported above.
        if (held.has(s.streamId) || livePlaybackIds.has(playbackId)) {
          edge.unfollow(playbackId)
          continue
        }
        const viewers = this.opts.counter.count(playbackId)
        report(s.streamId, s.sessionId, viewers)
        // The players left (and a 0 went out if more had been reported): the stream is no longer followed.
        if (viewers === 0) edge.unfollow(playbackId)
        else held.add(s.streamId)
      }
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
  /** Counting the players this node proxies to other nodes: the holder records' reader and this node's id. */
  edge?: { holders: NonNullable<ViewerReporterOptions['holders']>; nodeId: string }
  send: ViewerReporterOptions['send']
  log: Logger
}

/** A node's viewer counting, assembled: what media HTTP feeds, and the reporter to start and stop with the node. */
export function viewerCounting(opts: ViewerCountingOptions): { tracking: ViewerTracking; reporter: ViewerReporter; edge: EdgeStreams | null } {
  const edge = opts.edge ? new EdgeStreams() : null
  const counter = new ViewerCounter({
    windowMs: opts.windowMs,
    perAddress: opts.perAddress,
    maxPerStream: opts.maxPerStream,
    maxSessions: opts.maxSessions,
    live: (playbackId) => {
      const w = opts.windows.get(playbackId)
      return (w !== undefined && !w.ended) || (edge?.has(playbackId) ?? false)
    }
  })
  return {
    edge,
    tracking: viewerTracking(counter, opts.trustProxyHops, edge ? (playbackId, stream) => edge.follow(playbackId, stream) : undefined),
    reporter: new ViewerReporter({
      counter,
      streams: opts.streams,
      ...(edge && opts.edge ? { edge, holders: opts.edge.holders, nodeId: opts.edge.nodeId } : {}),
      send: opts.send,
      intervalMs: opts.reportMs,
      refreshMs: opts.refreshMs,
      log: opts.log.child({ component: 'viewers' })
    })
  }
}
