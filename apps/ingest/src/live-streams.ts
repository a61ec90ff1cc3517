import type { StreamUnpublished } from '@livestream/events'
import type { EventsProducer } from './events-producer.js'
import type { Logger } from './logger.js'
import { removeOwnMedia } from './media-folders.js'
import { Packager } from './packager.js'

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
  packager: Packager
  graceTimer: NodeJS.Timeout | null
}

export interface LiveStreamsOptions {
  ffmpegPath: string
  mediaRoot: string
  nodeId: string
  segmentSeconds: number
  reconnectWindowMs: number
  mediaRetentionMs: number
  playbackBaseUrl: string
  producer: EventsProducer
  log: Logger
}

/**
 * What this node holds: one entry per live stream, from an accepted publish until the publisher has been gone for the
 * whole reconnect window (or the key was revoked, or the node shuts down). Our window, not node-media-server's fixed
 * 30 s grace, decides when a stream is over.
 */
export class LiveStreams {
  private readonly streams = new Map<number, LiveStream>()
  /** Media removals waiting out the retention, by playback id. */
  private readonly cleanupTimers = new Map<string, NodeJS.Timeout>()
  readonly stats = { published: 0, unpublished: 0, resumed: 0 }

  constructor(private readonly opts: LiveStreamsOptions) {}

  ids(): number[] {
    return [...this.streams.keys()]
  }

  get size(): number {
    return this.streams.size
  }

  packagers(): Packager[] {
    return [...this.streams.values()].map((s) => s.packager)
  }

  keys(): Array<{ streamId: number; streamKey: string }> {
    return [...this.streams.values()].map((s) => ({ streamId: s.streamId, streamKey: s.streamKey }))
  }

  /** True while `streamId` is held here under `streamKey`. */
  holds(streamId: number, streamKey: string): boolean {
    return this.streams.get(streamId)?.streamKey === streamKey
  }

  /** An authorised publish began. A stream inside its reconnect window resumes: no new event, same packager. */
  async accept(
    target: { id: number; playbackId: string },
    streamKey: string,
    streamPath: string,
    session: PublisherSession
  ): Promise<void> {
    const log = this.opts.log.child({ streamId: target.id, sessionId: session.id })
    const existing = this.streams.get(target.id)
    if (existing) {
      if (existing.graceTimer) clearTimeout(existing.graceTimer)
      existing.graceTimer = null
      existing.publisher = session
      existing.streamKey = streamKey
      this.stats.resumed++
      if (!existing.packager.running) await existing.packager.start()
      log.info('publisher came back within the reconnect window; stream stays live')
      return
    }
    // Back within the media retention of an earlier publish: its folders are this publish's now.
    this.cancelRemoval(target.playbackId)
    const packager = new Packager({
      ffmpegPath: this.opts.ffmpegPath,
      mediaRoot: this.opts.mediaRoot,
      nodeId: this.opts.nodeId,
      playbackId: target.playbackId,
      streamPath,
      segmentSeconds: this.opts.segmentSeconds,
      log
    })
    const entry: LiveStream = {
      streamId: target.id,
      playbackId: target.playbackId,
      streamKey,
      publisher: session,
      sessionId: session.id,
      packager,
      graceTimer: null
    }
    this.streams.set(target.id, entry)
    try {
      await packager.start()
    } catch (err) {
      // Never live: no stream.published was sent, so nothing may be ended either. The entry goes before the
      // session closes, so the connection's close finds nothing to wait for and no stream.unpublished follows.
      if (this.streams.get(target.id) === entry) this.streams.delete(target.id)
      await packager.stop().catch(() => undefined)
      session.close()
      throw err
    }
    this.stats.published++
    this.opts.producer.send({
      type: 'stream.published',
      streamId: target.id,
      sessionId: session.id,
      playbackBaseUrl: this.opts.playbackBaseUrl
    })
    log.info({ playbackId: target.playbackId }, 'stream is live')
  }

  /** The publisher's connection closed: wait out the reconnect window before calling the stream over. */
  publisherGone(streamId: number, session: PublisherSession): void {
    const entry = this.streams.get(streamId)
    if (!entry || entry.publisher !== session) return
    entry.publisher = null
    this.opts.log.info({ streamId, windowMs: this.opts.reconnectWindowMs }, 'publisher left; waiting for a reconnect')
    entry.graceTimer = setTimeout(() => void this.end(streamId, 'publisher-left'), this.opts.reconnectWindowMs)
  }

  /** Ends a stream now: disconnects its publisher, stops packaging, sends `stream.unpublished`, schedules media removal. */
  async end(streamId: number, reason: StreamUnpublished['reason']): Promise<void> {
    const entry = this.streams.get(streamId)
    if (!entry) return
    this.streams.delete(streamId)
    if (entry.graceTimer) clearTimeout(entry.graceTimer)
    entry.publisher?.close()
    await entry.packager.stop()
    this.stats.unpublished++
    this.opts.producer.send({ type: 'stream.unpublished', streamId, sessionId: entry.sessionId, reason })
    this.opts.log.info({ streamId, reason }, 'stream is over on this node')
    this.scheduleRemoval(entry.playbackId)
  }

  private scheduleRemoval(playbackId: string): void {
    this.cancelRemoval(playbackId)
    const timer = setTimeout(() => {
      this.cleanupTimers.delete(playbackId)
      void removeOwnMedia(this.opts.mediaRoot, playbackId, this.opts.nodeId).catch((err: Error) =>
        this.opts.log.warn({ playbackId, err: { message: err.message } }, 'media folders not removed')
      )
    }, this.opts.mediaRetentionMs)
    timer.unref()
    this.cleanupTimers.set(playbackId, timer)
  }

  private cancelRemoval(playbackId: string): void {
    const timer = this.cleanupTimers.get(playbackId)
    if (timer) clearTimeout(timer)
    this.cleanupTimers.delete(playbackId)
  }

  /**
   * Ends everything (node shutdown) and removes this node's media now: its HTTP server stops serving it anyway, and
   * with nodes sharing MEDIA_ROOT, no other node's start will clean up after this one (each removes only its own).
   */
  async endAll(reason: StreamUnpublished['reason']): Promise<void> {
    await Promise.all(this.ids().map((id) => this.end(id, reason)))
    const waiting = [...this.cleanupTimers.keys()]
    for (const t of this.cleanupTimers.values()) clearTimeout(t)
    this.cleanupTimers.clear()
    await Promise.all(
      waiting.map((playbackId) =>
        removeOwnMedia(this.opts.mediaRoot, playbackId, this.opts.nodeId).catch((err: Error) =>
          this.opts.log.warn({ playbackId, err: { message: err.message } }, 'media folders not removed')
        )
      )
    )
  }
}
