import type { Server as NetServer, Socket } from 'node:net'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { EventsProducer } from './events-producer.js'
import { PACKAGING_SAMPLE_EVERY, type LiveStreams, type PackagingObserver } from './live-streams.js'
import type { MediaWindows } from './media/window.js'
import type { PublishAuth } from './publish-auth.js'

/** Bytes the live windows hold in memory: init segments and every part kept. */
export function windowBytes(windows: MediaWindows): number {
  let n = 0
  for (const w of windows.values()) {
    for (const track of w.tracks.values()) {
      for (const init of track.inits.values()) n += init.bytes.length
      for (const seg of track.segments) for (const part of seg.parts) n += part.bytes.length
    }
  }
  return n
}

/** How far back the ingest bitrate looks. */
const RATE_WINDOW_MS = 5_000
const RATE_SAMPLE_MS = 1_000

/**
 * Bytes in and out of a node's servers, read from their sockets' own counters (`bytesRead`, `bytesWritten`): nothing
 * is added to the media path. Open sockets are summed when asked; a closing socket's bytes move to the totals.
 */
export class TrafficCounter {
  private readonly open = new Set<Socket>()
  private closedRead = 0
  private closedWritten = 0
  private readonly samples: Array<{ at: number; read: number }> = []
  private timer: NodeJS.Timeout | null = null

  /** Counts every connection `server` accepts from now on. */
  watch(server: NetServer | { on(event: 'connection', listener: (socket: Socket) => void): unknown } | undefined): void {
    server?.on('connection', (socket: Socket) => {
      this.open.add(socket)
      socket.once('close', () => {
        this.open.delete(socket)
        this.closedRead += socket.bytesRead
        this.closedWritten += socket.bytesWritten
      })
    })
  }

  get bytesRead(): number {
    let n = this.closedRead
    for (const s of this.open) n += s.bytesRead
    return n
  }

  get bytesWritten(): number {
    let n = this.closedWritten
    for (const s of this.open) n += s.bytesWritten
    return n
  }

  /** Keeps a reading every second, so the bitrate covers the last few seconds whenever Prometheus asks. */
  start(): void {
    this.sample()
    this.timer ??= setInterval(() => this.sample(), RATE_SAMPLE_MS).unref()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }

  private sample(now = Date.now()): void {
    this.samples.push({ at: now, read: this.bytesRead })
    while (this.samples.length > 1 && now - this.samples[0]!.at > RATE_WINDOW_MS) this.samples.shift()
  }

  /** Bits per second received over the last few seconds (0 before two readings exist). */
  receivedBitsPerSecond(now = Date.now()): number {
    const oldest = this.samples[0]
    if (!oldest || now - oldest.at <= 0) return 0
    return ((this.bytesRead - oldest.read) * 8 * 1000) / (now - oldest.at)
  }
}

/** What the node's gauges and counters are read from at scrape time. */
export interface IngestMetricSources {
  live: LiveStreams
  windows: MediaWindows
  auth: PublishAuth
  producer: EventsProducer
  /** RTMP in (read) and media HTTP out (written). */
  rtmp: TrafficCounter
  media: TrafficCounter
  /** Viewers on this node, once they are counted; 0 until then. */
  viewers?: () => number
  /** Whether the node is draining; false until drain exists. */
  draining?: () => boolean
}

/**
 * The node's Prometheus metrics, in a registry of its own, every series labelled `node="<INGEST_NODE_ID>"`. No label
 * names a stream, a key or a URL: cardinality stays bounded whatever the node holds. Most values are read at scrape
 * time from counters the node keeps anyway (`stats` of publish auth, the live streams and the producer, the sockets'
 * byte counts); the two histograms are fed as segments are cut and packets packaged (sampled).
 *
 * Built in two steps, since the live streams need the observer before the sources exist: `new IngestMetrics(nodeId)`,
 * then `readFrom(sources)` once.
 */
export class IngestMetrics {
  readonly registry = new Registry()
  /** For LiveStreams: segment cuts and packaging time. */
  readonly observer: PackagingObserver

  constructor(nodeId: string) {
    const registers = [this.registry]
    this.registry.setDefaultLabels({ node: nodeId })
    collectDefaultMetrics({ register: this.registry })
    const segments = new Histogram({
      name: 'livestream_ingest_segment_duration_seconds',
      help: "Duration of each segment cut on a stream's leading track, video (or audio alone): keyframe to keyframe, the target is HLS_SEGMENT_SECONDS.",
      buckets: [0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 15],
      registers
    })
    const packaging = new Histogram({
      name: 'livestream_ingest_packaging_seconds',
      help: `Time to package one media packet into CMAF (one packet in ${PACKAGING_SAMPLE_EVERY} is measured).`,
      buckets: [0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.01, 0.05],
      registers
    })
    this.observer = {
      segmentCut: (seconds) => segments.observe(seconds),
      packaged: (seconds) => packaging.observe(seconds)
    }
  }

  /** Registers the gauges and counters read from the node's parts at scrape time. Call once. */
  readFrom(o: IngestMetricSources): void {
    const registers = [this.registry]
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read())
        }
      })
    /** A counter mirroring a running total the node already keeps. */
    const total = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset()
          this.inc(read())
        }
      })

    gauge('livestream_ingest_live_streams', 'Streams this node holds now, counting those inside their reconnect window (the autoscaling signal).', () => o.live.size)
    gauge('livestream_ingest_media_window_bytes', 'Bytes of media the live windows hold in memory (init segments and every part kept).', () => windowBytes(o.windows))
    gauge('livestream_ingest_viewers', 'Viewers playing from this node (0 until viewer counting is wired).', () => (o.viewers ? o.viewers() : 0))
    gauge('livestream_ingest_draining', '1 while the node drains (refuses publishes, hands its publishers to other nodes), else 0.', () => (o.draining?.() ? 1 : 0))
    gauge('livestream_ingest_outbox_events', "Events in the producer's outbox, not yet acknowledged by the queue.", () => o.producer.stats.pending)
    gauge('livestream_ingest_received_bits_per_second', 'RTMP bits received per second over the last ~5 seconds (ingest bitrate).', () => o.rtmp.receivedBitsPerSecond())

    // Each publish ends in one of these (throttling only delays a verdict: it is counted apart). A new outcome (a
    // drain refusal, say) is a new field in the stats it comes from and a line here.
    const outcomes: Array<[string, () => number]> = [
      ['accepted', () => o.auth.stats.accepted],
      ['refused_key', () => o.auth.stats.refused],
      ['refused_unavailable', () => o.auth.stats.unavailable],
      ['refused_media', () => o.live.stats.refusedMedia],
      ['resumed', () => o.live.stats.resumed]
    ]
    new Counter({
      name: 'livestream_ingest_publishes_total',
      help: 'RTMP publishes by outcome: accepted (key valid), refused_key (malformed, unknown or ended key), refused_unavailable (the database did not answer), refused_media (not H.264/AAC), resumed (back within the reconnect window).',
      labelNames: ['outcome'],
      registers,
      collect() {
        this.reset()
        for (const [outcome, read] of outcomes) this.inc({ outcome }, read())
      }
    })
    total('livestream_ingest_publishes_throttled_total', 'Publish checks delayed because their address kept failing.', () => o.auth.stats.throttled)
    total('livestream_ingest_received_bytes_total', 'Bytes received on RTMP connections.', () => o.rtmp.bytesRead)
    total('livestream_ingest_sent_bytes_total', 'Bytes sent by media HTTP (playlists, manifests, segments, probes).', () => o.media.bytesWritten)
    total('livestream_ingest_events_queued_total', 'Events the node produced.', () => o.producer.stats.queued)
    total('livestream_ingest_events_sent_total', 'Events the queue acknowledged.', () => o.producer.stats.sent)
    total('livestream_ingest_event_send_failures_total', 'Attempts to send an event that failed (it stays in the outbox and is retried).', () => o.producer.stats.failures)
  }

  /** The text exposition, for `GET /metrics`. */
  render(): Promise<string> {
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }
}
