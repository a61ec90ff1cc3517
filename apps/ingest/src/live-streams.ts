import type { StreamUnpublished } from '@livestream/events'
import type { EventsProducer } from './events-producer.js'
import type { Logger } from './logger.js'
import { CmafPackager, type MediaPacket } from './media/cmaf-packager.js'
import { availabilityStart, discontinuitiesThrough, MediaWindow, type MediaWindows } from './media/window.js'
import { tapBroadcast } from './nms.js'
import type { PlaybackDirectory, Timeline } from './playback-directory.js'

/** The RTMP connection currently publishing a stream, as much of it as we need. */
export interface PublisherSession {
  id: string
  close(): void
}

interface LiveStream {
  streamId: number
  playbackId: string
  /** Kept in memory to notice a rotation; never logged. */
  streamKey: string
  publisher: PublisherSession | null
  /** The first session of this publish: the `sessionId` of its events. */
  sessionId: string
  window: MediaWindow
  packager: CmafPackager
  /** `stream.published` went out: its first part was packaged. Before that the stream is not live anywhere. */
  announced: boolean
  graceTimer: NodeJS.Timeout | null
  /** The segments last written to the timeline (a key of each track's last msn): it is saved when they change. */
  savedAt: string
  log: Logger
}

export interface LiveStreamsOptions {
  windows: MediaWindows
  segmentSeconds: number
  partSeconds: number
  /** Complete segments each track's live window keeps. */
  windowSegments: number
  reconnectWindowMs: number
  /** How long an ended stream's window (with its end mark) stays served. */
  mediaRetentionMs: number
  playbackBaseUrl: string
  producer: EventsProducer
  log: Logger
  /** Packaging figures for metrics: segment cuts, and the time to package one packet (sampled). */
  observer?: PackagingObserver
  /** Where an accepted publish's packets come from: node-media-server's broadcast (tests feed their own). */
  tap?: (streamPath: string, onPacket: (packet: MediaPacket) => void) => boolean
  /**
   * Which node serves which playback id, and each stream's timeline (Redis). Without it (tests) the node is alone:
   * every stream starts a new timeline and nothing is claimed.
   */
  directory?: PlaybackDirectory
  /** The set of streams held changed (a new one): the heartbeat reports it at once rather than at its next beat. */
  onHeldChange?: () => void
}

export interface PackagingObserver {
  /** A segment of the stream's leading track (video, or audio alone) was cut; the other tracks follow its cuts. */
  segmentCut(seconds: number): void
  /** Seconds one packet took to package; told for one packet in PACKAGING_SAMPLE_EVERY. */
  packaged(seconds: number): void
}

/**
 * Packaging time is measured on one packet in this many (a power of two): two clock reads and an observation on
 * every packet would be a noticeable share of the packager's own per-packet cost, a sample is not.
 */
export const PACKAGING_SAMPLE_EVERY = 16

/**
 * What this node holds: one entry per publish, from an accepted publish until the publisher has been gone for the
 * whole reconnect window (or the key was revoked, or the node shuts down). Our window, not node-media-server's fixed
 * 30 s grace, decides when a stream is over.
 *
 * A publish is live once its first part is packaged: that is when `stream.published` goes out and players can start.
 * A publish that cannot be packaged (a codec other than H.264/AAC) is refused with no event at all.
 */
export class LiveStreams {
  private readonly streams = new Map<number, LiveStream>()
  /** Removals of ended windows waiting out the retention, by playback id. */
  private readonly cleanupTimers = new Map<string, NodeJS.Timeout>()
  readonly stats = { published: 0, unpublished: 0, reconnecting: 0, resumed: 0, refusedMedia: 0, movedAway: 0, continued: 0, bytesIn: 0 }
  /** Packets packaged, for sampling their packaging time. */
  private packets = 0

  constructor(private readonly opts: LiveStreamsOptions) {}

  ids(): number[] {
    return [...this.streams.keys()]
  }

  get size(): number {
    return this.streams.size
  }

  keys(): Array<{ streamId: number; streamKey: string }> {
    return [...this.streams.values()].map((s) => ({ streamId: s.streamId, streamKey: s.streamKey }))
  }

  /** Streams whose publisher is connected here now (what a drain disconnects). */
  publishing(): number[] {
    return [...this.streams.values()].filter((s) => s.publisher !== null).map((s) => s.streamId)
  }

  /** True while `streamId` is held here under `streamKey`. */
  holds(streamId: number, streamKey: string): boolean {
    return this.streams.get(streamId)?.streamKey === streamKey
  }

  /**
   * An authorised publish begins: its media goes to this stream's packager from the next packet on. Call it before the
   * publisher's socket resumes. A stream inside its reconnect window resumes: no new event, the same window, the
   * timeline continued after a discontinuity.
   */
  async accept(target: { id: number; playbackId: string }, streamKey: string, streamPath: string, session: PublisherSession): Promise<void> {
    const log = this.opts.log.child({ streamId: target.id, sessionId: session.id })
    // A stream this node does not hold may have been live on another node (a drain, a reconnect through the load
    // balancer): its playlists continue from where that node left them.
    const timeline = !this.streams.has(target.id) && this.opts.directory ? await this.opts.directory.loadTimeline(target.playbackId) : null
    const existing = this.streams.get(target.id)
    if (existing) {
      // A window running means the api was told `stream.reconnecting` (only announced streams wait out a window).
      const wasReconnecting = existing.graceTimer !== null
      if (existing.graceTimer) clearTimeout(existing.graceTimer)
      existing.graceTimer = null
      // Still connected under another key (a rotation the recheck has not noticed yet: the owner's new key is in
      // before the leaked one was cut). The key the database accepts now wins; the other connection goes.
      const previous = existing.publisher
      if (previous && previous !== session) {
        existing.publisher = null
        previous.close()
        log.warn({ replacedSessionId: previous.id }, 'a publish with the current key replaced the publisher still connected')
      }
      existing.publisher = session
      existing.window.publisherAway = false
      existing.streamKey = streamKey
      existing.packager.discontinuity()
      this.tap(existing, streamPath, session)
      this.stats.resumed++
      if (wasReconnecting) this.opts.producer.send({ type: 'stream.resumed', streamId: target.id, sessionId: session.id })
      log.info('publisher came back within the reconnect window; stream stays live')
      return
    }
    // Back within the retention of an earlier publish: its ended window gives way to this one.
    this.cancelRemoval(target.playbackId)
    const window = new MediaWindow(target.playbackId, this.opts.segmentSeconds, this.opts.partSeconds, this.opts.windowSegments)
    let continueFrom: ConstructorParameters<typeof CmafPackager>[0]['continueFrom']
    if (timeline) {
      window.availabilityStartTime = timeline.ast
      // One number is skipped: the old node's playlists may have hinted the next part of \`nextMsn\`
      // (EXT-X-PRELOAD-HINT) and players may already have asked for it; that URL must never name other bytes.
      continueFrom = { msn: timeline.nextMsn + 1, initVersions: {}, ...(timeline.endPdt === undefined ? {} : { endPdt: timeline.endPdt }) }
      for (const [kind, t] of Object.entries(timeline.tracks) as Array<[keyof Timeline['tracks'], { discontinuities: number; nextInit: number }]>) {
        window.startDiscontinuities[kind] = t.discontinuities
        continueFrom.initVersions[kind] = t.nextInit
      }
      this.stats.continued++
      log.info({ msn: timeline.nextMsn }, 'continuing the playlists the stream had on another node')
    }
    const observer = this.opts.observer
    if (observer) window.onSegmentComplete = (kind, seconds) => window.leader?.kind === kind && observer.segmentCut(seconds)
    const entry: LiveStream = {
      streamId: target.id,
      playbackId: target.playbackId,
      streamKey,
      publisher: session,
      sessionId: session.id,
      window,
      packager: new CmafPackager({
        window,
        segmentSeconds: this.opts.segmentSeconds,
        partSeconds: this.opts.partSeconds,
        log,
        ...(continueFrom ? { continueFrom } : {})
      }),
      announced: false,
      graceTimer: null,
      savedAt: '',
      log
    }
    this.streams.set(target.id, entry)
    // A stream continued from another node is served here only once it has media (\`announce\`): until then players
    // asking this node are proxied to the node that still has the stream's last parts.
    if (!timeline) this.opts.windows.set(window)
    this.tap(entry, streamPath, session)
    this.opts.onHeldChange?.()
  }

  private tap(entry: LiveStream, streamPath: string, session: PublisherSession): void {
    const onPacket = (packet: MediaPacket) => {
      // Only the current publisher feeds the packager: a replaced one (another stream path) may still be sending.
      if (this.streams.get(entry.streamId) !== entry || entry.publisher !== session) return
      this.stats.bytesIn += packet.size ?? packet.data.length
      const observer = this.opts.observer
      try {
        if (observer && (++this.packets & (PACKAGING_SAMPLE_EVERY - 1)) === 0) {
          const started = process.hrtime.bigint()
          entry.packager.push(packet)
          observer.packaged(Number(process.hrtime.bigint() - started) / 1e9)
        } else {
          entry.packager.push(packet)
        }
      } catch (err) {
        this.refuseMedia(entry, err as Error)
        return
      }
      if (!entry.announced && entry.window.leader?.segments[0]?.parts.length) this.announce(entry)
      if (entry.announced) this.saveTimeline(entry)
    }
    if (!(this.opts.tap ?? tapBroadcast)(streamPath, onPacket)) throw new Error('node-media-server has no broadcast for the accepted publish')
  }

  /**
   * Each time a track opens a segment, the stream's timeline goes to Redis: if the publisher reconnects through another
   * node (a drain, a load balancer's choice), that node continues after it. About two small writes per segment.
   */
  private saveTimeline(entry: LiveStream, always = false): void {
    const directory = this.opts.directory
    if (!directory) return
    const w = entry.window
    let key = ''
    for (const [kind, t] of w.tracks) key += `${kind}${t.segments.at(-1)?.msn ?? -1}:${t.currentInitVersion};`
    if (key === entry.savedAt && !always) return
    entry.savedAt = key
    const last = w.leader?.segments.at(-1)
    const timeline: Timeline = { nextMsn: entry.packager.nextSegmentMsn, ast: availabilityStart(w) ?? w.startedAt ?? Date.now(), tracks: {} }
    if (last) timeline.endPdt = Math.round(last.programDateTime + last.duration * 1000)
    for (const [kind, t] of w.tracks) timeline.tracks[kind] = { discontinuities: discontinuitiesThrough(t), nextInit: t.currentInitVersion + 1 }
    directory.saveTimeline(entry.playbackId, timeline)
  }

  private announce(entry: LiveStream): void {
    // Players reaching any node are proxied here from now on (the previous holder, if any, lets go when it sees it).
    this.opts.windows.set(entry.window)
    this.opts.directory?.claim(entry.playbackId, { streamId: entry.streamId, sessionId: entry.sessionId })
    entry.announced = true
    this.stats.published++
    this.opts.producer.send({
      type: 'stream.published',
      streamId: entry.streamId,
      sessionId: entry.sessionId,
      playbackBaseUrl: this.opts.playbackBaseUrl
    })
    entry.log.info({ playbackId: entry.playbackId, tracks: [...entry.window.tracks.keys()] }, 'stream is live')
  }

  /** Media we cannot package: the publish goes, and since it never went live, no event says anything about it. */
  private refuseMedia(entry: LiveStream, err: Error): void {
    this.stats.refusedMedia++
    entry.log.warn({ reason: err.message }, 'publish refused: its media cannot be packaged (H.264 video and AAC audio only)')
    if (entry.announced) {
      void this.end(entry.streamId, 'publisher-left')
      return
    }
    this.drop(entry)
    entry.publisher?.close()
  }

  private drop(entry: LiveStream): void {
    if (entry.graceTimer) clearTimeout(entry.graceTimer)
    this.streams.delete(entry.streamId)
    if (this.opts.windows.get(entry.playbackId) === entry.window) this.opts.windows.delete(entry.playbackId)
  }

  /** The publisher's connection closed: wait out the reconnect window before calling the stream over. */
  publisherGone(streamId: number, session: PublisherSession): void {
    const entry = this.streams.get(streamId)
    if (!entry || entry.publisher !== session) return
    entry.publisher = null
    if (!entry.announced) {
      // Never live: nothing to wait for and nothing to tell.
      this.drop(entry)
      return
    }
    // The open segment closes now, with what it has: players see it complete (not a segment that never ends), and
    // the timeline saved next says exactly where the media ended, for the node the publisher may reconnect to.
    entry.packager.discontinuity()
    this.saveTimeline(entry, true)
    // Players held for the next part get the playlist as it is now, and short holds until the publisher is back.
    entry.window.publisherAway = true
    for (const t of entry.window.tracks.values()) t.interrupt()
    this.opts.log.info({ streamId, windowMs: this.opts.reconnectWindowMs }, 'publisher left; waiting for a reconnect')
    entry.graceTimer = setTimeout(() => void this.windowPassed(entry, 'publisher-left'), this.opts.reconnectWindowMs)
    this.reconnecting(entry)
  }

  /**
   * The reconnect window passed with no publisher here. If the publisher came back through another node, the stream
   * lives on there and this node lets go without a word; otherwise it is over.
   */
  private async windowPassed(entry: LiveStream, reason: StreamUnpublished['reason']): Promise<void> {
    const directory = this.opts.directory
    if (directory) {
      const holder = await directory.holderOf(entry.playbackId, true)
      if (this.streams.get(entry.streamId) !== entry || entry.publisher) return
      if (holder && holder.nodeId !== directory.nodeId) return this.movedAway(entry, holder.nodeId)
    }
    await this.end(entry.streamId, reason)
  }

  /**
   * Streams waiting for their publisher here whose playback another node has claimed (the publisher reconnected
   * there): this node lets them go at once, with no event (the other node's `stream.published` moved the stream), and
   * players asking this node are proxied to the new holder. Called every half second or so.
   */
  async checkMovedAway(): Promise<void> {
    const directory = this.opts.directory
    if (!directory) return
    const waiting = [...this.streams.values()].filter((s) => s.publisher === null && s.announced)
    if (waiting.length === 0) return
    const holders = await directory.holdersOf(waiting.map((s) => s.playbackId))
    for (const entry of waiting) {
      const holder = holders.get(entry.playbackId)
      if (this.streams.get(entry.streamId) !== entry || entry.publisher || !holder || holder.nodeId === directory.nodeId) continue
      this.movedAway(entry, holder.nodeId)
    }
  }

  private movedAway(entry: LiveStream, nodeId: string): void {
    this.stats.movedAway++
    this.drop(entry)
    for (const t of entry.window.tracks.values()) t.interrupt()
    this.opts.directory?.release(entry.playbackId)
    entry.log.info({ playbackId: entry.playbackId, to: nodeId }, 'the stream continues on another node; let go here')
  }

  /** Drain: cuts the publisher of `streamId` so that it reconnects elsewhere; the stream waits for it as after a drop. */
  disconnect(streamId: number): boolean {
    const publisher = this.streams.get(streamId)?.publisher
    publisher?.close()
    return publisher != null
  }

  /**
   * The stream's key was rotated to `newKey` while the stream is still on in the database. Rotation is how an owner
   * recovers from a leaked key, so it cuts the publisher (who holds the old key) but does not end the stream: it waits
   * out the reconnect window as if the publisher had dropped. A publish with the new key within the window resumes it
   * (same playlists, after a discontinuity); past the window it ends with `key-rotated`. A publisher already gone
   * keeps the window it had.
   */
  keyRotated(streamId: number, newKey: string): void {
    const entry = this.streams.get(streamId)
    if (!entry) return
    entry.streamKey = newKey
    const publisher = entry.publisher
    // Cleared first: its connection's close must not start a second window with another reason.
    entry.publisher = null
    publisher?.close()
    if (!entry.announced) {
      this.drop(entry)
      return
    }
    entry.window.publisherAway = true
    if (entry.graceTimer) return
    this.opts.log.info({ streamId, windowMs: this.opts.reconnectWindowMs }, 'key rotated: publisher cut; waiting for a publish with the new key')
    entry.graceTimer = setTimeout(() => void this.windowPassed(entry, 'key-rotated'), this.opts.reconnectWindowMs)
    this.reconnecting(entry)
  }

  /**
   * The reconnect window has started: the api shows the stream `live` with `connection: reconnecting` until
   * `stream.resumed` (back here), a `stream.published` from another node, or `stream.unpublished` (the window passed).
   */
  private reconnecting(entry: LiveStream): void {
    this.stats.reconnecting++
    this.opts.producer.send({ type: 'stream.reconnecting', streamId: entry.streamId, sessionId: entry.sessionId })
  }

  /** Ends a stream now: disconnects its publisher, closes its playlists, sends `stream.unpublished`, schedules removal. */
  async end(streamId: number, reason: StreamUnpublished['reason']): Promise<void> {
    const entry = this.streams.get(streamId)
    if (!entry) return
    this.streams.delete(streamId)
    if (entry.graceTimer) clearTimeout(entry.graceTimer)
    entry.publisher?.close()
    entry.packager.end()
    this.opts.directory?.release(entry.playbackId)
    if (!entry.announced) {
      this.drop(entry)
      return
    }
    // Over for good (\`ended\` is final): no node will continue it.
    this.opts.directory?.forgetTimeline(entry.playbackId)
    this.stats.unpublished++
    this.opts.producer.send({ type: 'stream.unpublished', streamId, sessionId: entry.sessionId, reason })
    this.opts.log.info({ streamId, reason }, 'stream is over on this node')
    this.scheduleRemoval(entry.window)
  }

  private scheduleRemoval(window: MediaWindow): void {
    this.cancelRemoval(window.playbackId)
    const timer = setTimeout(() => {
      this.cleanupTimers.delete(window.playbackId)
      if (this.opts.windows.get(window.playbackId) === window) this.opts.windows.delete(window.playbackId)
    }, this.opts.mediaRetentionMs)
    timer.unref()
    this.cleanupTimers.set(window.playbackId, timer)
  }

  private cancelRemoval(playbackId: string): void {
    const timer = this.cleanupTimers.get(playbackId)
    if (timer) clearTimeout(timer)
    this.cleanupTimers.delete(playbackId)
  }

  /** The streams live here (announced), for viewer reports. */
  *announced(): Generator<{ streamId: number; playbackId: string; sessionId: string }> {
    for (const s of this.streams.values()) if (s.announced) yield { streamId: s.streamId, playbackId: s.playbackId, sessionId: s.sessionId }
  }

  /** Ends everything (node shutdown); the windows go with the process. */
  async endAll(reason: StreamUnpublished['reason']): Promise<void> {
    await Promise.all(this.ids().map((id) => this.end(id, reason)))
    for (const t of this.cleanupTimers.values()) clearTimeout(t)
    this.cleanupTimers.clear()
  }
}
