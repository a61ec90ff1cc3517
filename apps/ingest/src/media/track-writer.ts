/**
 * One CMAF track being written into its `TrackWindow`: samples in, parts (`moof`+`mdat`) and segments out.
 * The packager decides where segments start; this class holds one sample back (its duration is the next sample's
 * dts minus its own), groups samples into parts and writes them.
 */
import { SAMPLE_NON_SYNC, SAMPLE_SYNC, writeFragment, type FragmentSample } from './boxes.js'
import { SampleStore } from './sample-store.js'
import type { MediaWindow, TrackInfo, TrackKind, TrackWindow } from './window.js'

export interface Sample extends FragmentSample {
  /** Decode time in the track's timescale; strictly increasing. */
  dts: number
  /** Milliseconds on the broadcast's timeline, shared by all tracks: where cuts are compared. */
  ms: number
  key: boolean
  /** Position of the payload in the track's `SampleStore`. */
  pos: number
  /** Epoch ms when ingest received it. */
  wall: number
}

/** Parts end within this fraction of the part target (timestamps in ms do not divide the timescale evenly). */
const PART_SLACK = 0.01
/** LL-HLS: every part but a segment's last is at least 85 % of the part target. */
const MIN_PART = 0.85

export class TrackWriter {
  readonly store = new SampleStore()
  timescale: number
  info: TrackInfo | undefined
  initVersion = -1
  /** Decode time of the last sample accepted, for the strictly increasing clamp. */
  lastDts = -1
  /** Duration of the last sample that got one: the estimate for a sample with no successor. */
  lastDuration = 0
  private held: Sample | null = null
  private part: Sample[] = []
  private partTicks = 0
  private segmentOpen = false
  private segmentStartMs = 0
  private sequence = 0

  constructor(
    readonly kind: TrackKind,
    private readonly window: MediaWindow,
    timescale: number,
    private readonly partSeconds: number,
    /** Used when no sample duration is known yet (a stream that ends after one sample). */
    private readonly defaultDuration: (timescale: number) => number
  ) {
    this.timescale = timescale
  }

  // The window's track is created on first use: a track the packager drops never shows in the window.
  private get track(): TrackWindow {
    return this.window.track(this.kind)
  }

  get hasHeld(): boolean {
    return this.held !== null
  }

  get hasSegment(): boolean {
    return this.segmentOpen
  }

  /** Milliseconds since the open segment's first sample. */
  segmentElapsedMs(ms: number): number {
    return ms - this.segmentStartMs
  }

  setInit(info: TrackInfo, bytes: Buffer): number {
    this.initVersion++
    this.info = info
    if (info.timescale !== this.timescale && this.lastDts >= 0) {
      // A new sample rate: keep comparing decode times in the new unit.
      this.lastDts = Math.round((this.lastDts * info.timescale) / this.timescale)
      this.lastDuration = Math.round((this.lastDuration * info.timescale) / this.timescale)
    }
    this.timescale = info.timescale
    this.track.setInit(this.initVersion, info, bytes)
    return this.initVersion
  }

  /**
   * Takes `next` as the held sample; the previously held one gets its duration and joins the current part (or is
   * dropped when no segment is open). Returns that previous sample.
   */
  advance(next: Sample): Sample | null {
    const prev = this.held
    this.held = next
    this.lastDts = next.dts
    if (!prev) return null
    prev.duration = next.dts - prev.dts
    this.lastDuration = prev.duration
    this.append(prev)
    return prev
  }

  /** Drops a sample that will never be written (before the first keyframe, a track not yet cut in). */
  drop(s: { pos: number; size: number }): void {
    // Release only what lies before every sample still needed (the part, the held one).
    if (this.part.length === 0 && (!this.held || this.held.pos > s.pos)) this.store.release(s.pos + s.size)
  }

  /** Whether the part should be written now, before `next`: full, or the next sample would overflow it. */
  partDue(lastDuration: number): boolean {
    if (this.part.length === 0) return false
    const target = this.partSeconds * this.timescale
    return this.partTicks >= target * (1 - PART_SLACK) || this.partTicks + lastDuration > target * (1 + PART_SLACK)
  }

  /** Whether a part may end here although not full (so that a keyframe starts the next, independent part). */
  partLongEnough(): boolean {
    return this.partTicks >= this.partSeconds * this.timescale * MIN_PART
  }

  flushPart(): void {
    const samples = this.part
    if (samples.length === 0) return
    const first = samples[0] as Sample
    const last = samples[samples.length - 1] as Sample
    const store = this.store
    const bytes = writeFragment({
      sequence: ++this.sequence,
      baseMediaDecodeTime: first.dts,
      samples,
      video: this.kind === 'video',
      copy: (i, target, offset) => {
        const s = samples[i] as Sample
        store.copy(s.pos, s.size, target, offset)
      }
    })
    this.track.addPart({ duration: this.partTicks / this.timescale, independent: first.key, bytes })
    this.store.release(last.pos + last.size)
    this.part = []
    this.partTicks = 0
  }

  /** Ends the current segment and starts one whose first sample is the held one. */
  openSegment(o: { msn: number; discontinuity: boolean }): void {
    const first = this.held
    if (!first) throw new Error('openSegment without a sample')
    this.flushPart()
    this.track.openSegment({ msn: o.msn, baseMediaDecodeTime: first.dts, programDateTime: first.wall, discontinuity: o.discontinuity, initVersion: this.initVersion })
    this.segmentOpen = true
    this.segmentStartMs = first.ms
  }

  /** Writes out the held sample with an estimated duration and closes the segment (a gap or the end follows). */
  finish(): void {
    const held = this.held
    if (held) {
      this.held = null
      held.duration = this.lastDuration || this.defaultDuration(this.timescale)
      this.append(held)
    }
    this.flushPart()
    this.track.closeSegment()
    this.segmentOpen = false
  }

  /** Where the timeline stands after the last sample: a reconnect continues from here. */
  get endMs(): number {
    const held = this.held
    if (!held) return -Infinity
    return held.ms + ((this.lastDuration || this.defaultDuration(this.timescale)) * 1000) / this.timescale
  }

  end(): void {
    this.finish()
    this.track.end()
  }

  private append(s: Sample): void {
    if (!this.segmentOpen) {
      this.drop(s)
      return
    }
    s.flags = s.key ? SAMPLE_SYNC : SAMPLE_NON_SYNC
    this.part.push(s)
    this.partTicks += s.duration
  }
}
