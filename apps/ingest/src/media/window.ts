/**
 * The live window of one broadcast, in memory: the contract between the packager (which writes CMAF init segments,
 * parts and segments here) and the media HTTP side (which renders LL-HLS playlists and the DASH MPD from it and
 * serves the bytes). One set of bytes serves both protocols: a segment is the concatenation of its parts, each part
 * one `moof`+`mdat`.
 *
 * Tracks are separate CMAF tracks (one per kind), aligned on media sequence numbers: segment `msn` of the audio track
 * covers about the same time as segment `msn` of the video track. The leading track (video when present) decides the
 * cuts; the others follow at their first sample at or after the cut.
 */

export type TrackKind = 'video' | 'audio'

export interface TrackInfo {
  kind: TrackKind
  /** RFC 6381 codec string: `avc1.64001f`, `mp4a.40.2`. */
  codec: string
  /** Units per second of this track's decode times (`mdhd` timescale, `tfdt`). */
  timescale: number
  width?: number
  height?: number
  /** Frames per second, when known (metadata or measured). */
  frameRate?: number
  sampleRate?: number
  channels?: number
}

export interface Part {
  /** Index within its segment, from 0. */
  index: number
  /** Seconds. */
  duration: number
  /** Starts with a keyframe (always true for audio). */
  independent: boolean
  /** One `moof` + `mdat`. */
  bytes: Buffer
}

export interface Segment {
  /** Media sequence number; the same numbering on every track of a window. */
  msn: number
  /** The `tfdt` of its first sample, in the track's timescale (DASH `SegmentTimeline@t`). */
  baseMediaDecodeTime: number
  /** Wall-clock time (epoch ms) of its first sample as ingest received it: `EXT-X-PROGRAM-DATE-TIME`. */
  programDateTime: number
  /** Completed parts, in order. */
  parts: Part[]
  /** Seconds: the sum of its parts' durations (final once `complete`). */
  duration: number
  complete: boolean
  /** First segment after a reconnect or an init change: `EXT-X-DISCONTINUITY` (a new DASH Period). */
  discontinuity: boolean
  /** Which init segment its samples need (see `TrackWindow.init`). */
  initVersion: number
}

type Waiter = { msn: number; part: number; resolve: (ok: boolean) => void; timer: NodeJS.Timeout }

/** One track's window: its init segments and its recent segments, oldest first. */
export class TrackWindow {
  /** Init segments by version; a new version comes with a codec parameter change (SPS, sample rate). */
  readonly inits = new Map<number, { info: TrackInfo; bytes: Buffer }>()
  readonly segments: Segment[] = []
  /** Discontinuities that have slid out of the window (`EXT-X-DISCONTINUITY-SEQUENCE`). */
  discontinuitySequence = 0
  ended = false
  /** Bumped on every change (init, segment, part, close, end): renderers cache what they built per revision. */
  revision = 0
  private readonly waiters = new Set<Waiter>()

  constructor(
    readonly kind: TrackKind,
    /** Complete segments kept (plus the one being written). */
    private readonly keepSegments: number,
    /** Told the duration (seconds) of each segment as it completes (metrics). */
    private readonly onSegmentComplete?: (seconds: number) => void
  ) {}

  get currentInitVersion(): number {
    let v = -1
    for (const k of this.inits.keys()) v = Math.max(v, k)
    return v
  }

  get info(): TrackInfo | undefined {
    return this.inits.get(this.currentInitVersion)?.info
  }

  // ---- writer side (the packager) ----

  setInit(version: number, info: TrackInfo, bytes: Buffer): void {
    this.inits.set(version, { info, bytes })
    this.revision++
  }

  openSegment(s: Omit<Segment, 'parts' | 'duration' | 'complete'>): Segment {
    const last = this.segments.at(-1)
    if (last && !last.complete) this.closeSegment()
    const seg: Segment = { ...s, parts: [], duration: 0, complete: false }
    this.segments.push(seg)
    this.trim()
    this.wake()
    return seg
  }

  addPart(part: Omit<Part, 'index'>): void {
    const seg = this.segments.at(-1)
    if (!seg || seg.complete) throw new Error('addPart without an open segment')
    seg.parts.push({ ...part, index: seg.parts.length })
    seg.duration += part.duration
    this.wake()
  }

  closeSegment(): void {
    const seg = this.segments.at(-1)
    if (!seg || seg.complete) return
    if (seg.parts.length === 0) {
      this.segments.pop()
    } else {
      seg.complete = true
      this.onSegmentComplete?.(seg.duration)
    }
    this.wake()
  }

  /** The broadcast is over: the last segment closes, playlists get `EXT-X-ENDLIST`, blocked requests return. */
  end(): void {
    this.closeSegment()
    this.ended = true
    this.wake()
  }

  private trim(): void {
    while (this.segments.length > this.keepSegments + 1) {
      const gone = this.segments.shift() as Segment
      if (gone.discontinuity) this.discontinuitySequence++
      // Init segments no segment needs any more go too (keep the current one).
      const oldest = this.segments[0]?.initVersion ?? this.currentInitVersion
      for (const v of this.inits.keys()) if (v < oldest && v !== this.currentInitVersion) this.inits.delete(v)
    }
  }

  // ---- reader side (playlists, media HTTP) ----

  segment(msn: number): Segment | undefined {
    const first = this.segments[0]
    if (!first) return undefined
    return this.segments[msn - first.msn]
  }

  part(msn: number, index: number): Part | undefined {
    return this.segment(msn)?.parts[index]
  }

  /** True once part `index` of segment `msn` exists (or a later segment does, or the track ended). */
  has(msn: number, index: number): boolean {
    if (this.ended) return true
    const last = this.segments.at(-1)
    if (!last) return false
    if (last.msn > msn) return true
    if (last.msn < msn) return false
    return last.parts.length > index || last.complete
  }

  /** Resolves true when `has(msn, index)`, false after `timeoutMs` (blocking playlist reload, preload hints). */
  waitFor(msn: number, index: number, timeoutMs: number): Promise<boolean> {
    if (this.has(msn, index)) return Promise.resolve(true)
    return new Promise((resolve) => {
      const w: Waiter = {
        msn,
        part: index,
        resolve,
        timer: setTimeout(() => {
          this.waiters.delete(w)
          resolve(false)
        }, timeoutMs)
      }
      this.waiters.add(w)
    })
  }

  /**
   * The window stops being served here (its stream moved to another node): every held request returns now, to be
   * answered by the node that has the stream.
   */
  interrupt(): void {
    for (const w of this.waiters) {
      clearTimeout(w.timer)
      w.resolve(false)
    }
    this.waiters.clear()
  }

  private wake(): void {
    this.revision++
    for (const w of this.waiters) {
      if (this.has(w.msn, w.part)) {
        clearTimeout(w.timer)
        this.waiters.delete(w)
        w.resolve(true)
      }
    }
  }
}

/** Everything a node serves for one playback id. */
export class MediaWindow {
  readonly tracks = new Map<TrackKind, TrackWindow>()
  /** Set once the packager saw the first sample, epoch ms. */
  startedAt: number | null = null
  /**
   * The MPD's `availabilityStartTime`, epoch ms: fixed the first time it is needed (see `availabilityStart`), or
   * given by the timeline of an earlier node that held the stream, so that DASH players see one timeline.
   */
  availabilityStartTime: number | null = null
  /**
   * Discontinuity tags the stream's playlists had before this window's first segment (a stream continued from
   * another node): each track's `discontinuitySequence` starts there.
   */
  startDiscontinuities: Partial<Record<TrackKind, number>> = {}
  /**
   * The publisher is away (dropped, or cut by a drain) and may come back here or through another node. Meanwhile
   * blocking playlist requests are answered within `AWAY_HOLD_MS` with the playlist as it is (see media-routes.ts).
   */
  publisherAway = false
  /** Told of every segment cut on any track, with its duration in seconds (metrics); set before the first track. */
  onSegmentComplete: ((kind: TrackKind, seconds: number) => void) | undefined

  constructor(
    readonly playbackId: string,
    /** Seconds: `HLS_SEGMENT_SECONDS` and `HLS_PART_SECONDS`, the targets the packager cuts at. */
    readonly segmentTarget: number,
    readonly partTarget: number,
    readonly keepSegments: number
  ) {}

  track(kind: TrackKind): TrackWindow {
    let t = this.tracks.get(kind)
    if (!t) {
      const observe = this.onSegmentComplete
      t = new TrackWindow(kind, this.keepSegments, observe && ((seconds) => observe(kind, seconds)))
      t.discontinuitySequence = this.startDiscontinuities[kind] ?? 0
      this.tracks.set(kind, t)
    }
    return t
  }

  /** The track whose cuts the others follow: video when there is one. */
  get leader(): TrackWindow | undefined {
    return this.tracks.get('video') ?? this.tracks.get('audio')
  }

  get ended(): boolean {
    return [...this.tracks.values()].every((t) => t.ended) && this.tracks.size > 0
  }

  /** Changes whenever any track changes (or a track is added): the cache key of what is rendered from the window. */
  get revision(): string {
    let sum = 0
    for (const t of this.tracks.values()) sum += t.revision
    return `${this.tracks.size}:${sum}`
  }
}

/** The window's `availabilityStartTime` (epoch ms), fixed on first use; null before its first segment. */
export function availabilityStart(w: MediaWindow): number | null {
  if (w.availabilityStartTime === null) {
    const first = w.leader?.segments[0]?.programDateTime
    if (first === undefined) return null
    w.availabilityStartTime = Math.min(w.startedAt ?? first, first)
  }
  return w.availabilityStartTime
}

/** Discontinuity tags a track's playlist has had up to its last segment: where a continuation's count starts. */
export function discontinuitiesThrough(track: TrackWindow): number {
  let n = track.discontinuitySequence
  for (const s of track.segments) if (s.discontinuity) n++
  return n
}

/** The windows this node serves, by playback id. The packager registers; the media HTTP side reads. */
export class MediaWindows {
  private readonly byId = new Map<string, MediaWindow>()
  get(playbackId: string): MediaWindow | undefined {
    return this.byId.get(playbackId)
  }
  set(w: MediaWindow): void {
    this.byId.set(w.playbackId, w)
  }
  delete(playbackId: string): void {
    this.byId.delete(playbackId)
  }
  values(): IterableIterator<MediaWindow> {
    return this.byId.values()
  }
}
