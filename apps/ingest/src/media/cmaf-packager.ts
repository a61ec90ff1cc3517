/**
 * The in-process CMAF packager of one broadcast: node-media-server's FLV packets in, CMAF tracks (init segments,
 * LL-HLS parts, segments) out into a `MediaWindow`. It replaces one ffmpeg per stream.
 *
 * Cuts: the leading track (video when present) starts a segment at a keyframe once the open one reaches the target
 * (less half a part, so a keyframe a few frames early does not double a segment); a follower (audio beside video)
 * starts the same msn at its first sample at or after that time. Parts are written as soon as they are full, so a
 * player gets media about one part after it happened; the follower waits for the leader's decisions, which costs
 * only the interleaving skew of the publisher.
 */
import type { Logger } from 'pino'
import { parseAudioTag, parseVideoTag, TAG_AUDIO, TAG_VIDEO, type MediaPacket } from './flv.js'
import { audioConfig, Track, videoConfig, type Pending } from './track-state.js'
import { TrackWriter, type Sample } from './track-writer.js'
import type { MediaWindow, TrackKind } from './window.js'

export { UnsupportedMediaError, type MediaPacket } from './flv.js'

export interface CmafPackagerOptions {
  window: MediaWindow
  /** `HLS_SEGMENT_SECONDS`: segments start at the first keyframe at or after it. */
  segmentSeconds: number
  /** `HLS_PART_SECONDS` (0.2-0.5). */
  partSeconds: number
  /**
   * The first segment's target (default 1 s, at most `segmentSeconds`): hls.js cannot start from a playlist of parts
   * alone, so no viewer plays until one segment is complete; a short first one lets them start about a second after
   * the first keyframe (with keyframes at least that often).
   */
  firstSegmentSeconds?: number
  /** Epoch ms; `programDateTime` of a segment is when its first sample arrived. */
  now?: () => number
  /**
   * Continue a stream another packager wrote (on another node, before a reconnect): the first segment takes msn
   * `msn` and is a discontinuity, and each track's init versions go on from `initVersions` (their URLs are cached as
   * immutable, so a number is never reused for other bytes).
   */
  continueFrom?: { msn: number; initVersions: Partial<Record<TrackKind, number>>; endPdt?: number }
  log: Logger
}

const AAC_FRAME = 1024
/** An audio dts this close to the previous one plus a frame is that: ms timestamps only round it. */
const AUDIO_SNAP_MS = 2
/** A step back this large (that is no 32-bit wrap) is an encoder restart: a new timeline, as for a reconnect. */
const REBASE_BACK_MS = 1000

interface Cut {
  msn: number
  ms: number
  discontinuity: boolean
}

/**
 * Usage: `push(packet)` for every packet `BroadcastServer.broadcastMessage` sees, `discontinuity()` when a publisher
 * reconnects to the same broadcast, `end()` when it is over.
 *
 * `push` throws `UnsupportedMediaError` for a codec other than H.264 / AAC, or a sequence header it cannot read:
 * log it and refuse the publish; the packager has not changed state for that packet.
 */
export class CmafPackager {
  private readonly window: MediaWindow
  private readonly segmentMs: number
  private readonly firstSegmentMs: number
  private readonly partSeconds: number
  private readonly now: () => number
  private readonly log: Logger
  private readonly video = new Track('video')
  private readonly audio = new Track('audio')
  private state: 'probing' | 'running' | 'ended' = 'probing'
  /** Samples received before the set of tracks is known, in arrival order. */
  private probe: { track: Track; p: Pending }[] = []
  private leader: Track | null = null
  private follower: Track | null = null
  /** Timeline ms = unwrapped FLV ms + offset; NaN after a discontinuity until the next sample sets it. */
  private offsetMs = 0
  private resumeMs = 0
  private nextMsn = 0
  /** Segments cut so far: the first is short (see `firstSegmentSeconds`). */
  private cutsMade = 0
  private readonly initVersions: Partial<Record<TrackKind, number>> = {}
  private forceCut = false
  /** Subtracted from the wall clock for `programDateTime`: a continued stream's dates go on from where they ended. */
  private wallShift: number | null = null
  private readonly endPdt: number | undefined
  private discontinuityNext = false
  private readonly cuts: Cut[] = []
  private leaderMs = -Infinity
  private readonly warned = new Set<string>()
  /** Samples whose dts had to be moved forward (jitter). */
  clamped = 0

  constructor(o: CmafPackagerOptions) {
    this.window = o.window
    this.segmentMs = o.segmentSeconds * 1000
    this.firstSegmentMs = Math.min(o.firstSegmentSeconds ?? 1, o.segmentSeconds) * 1000
    this.partSeconds = o.partSeconds
    this.now = o.now ?? Date.now
    this.log = o.log
    if (o.continueFrom) {
      this.nextMsn = o.continueFrom.msn
      this.initVersions = o.continueFrom.initVersions
      this.endPdt = o.continueFrom.endPdt
      this.discontinuityNext = true
    }
  }

  /** The msn the next segment takes. */
  get nextSegmentMsn(): number {
    return this.nextMsn
  }

  /** The tracks being written, once known (`[]` while probing). */
  get tracks(): TrackKind[] {
    return [this.leader, this.follower].filter((t): t is Track => t !== null).map((t) => t.kind)
  }

  push(p: MediaPacket): void {
    if (this.state === 'ended') return
    if (p.codec_type === TAG_VIDEO) {
      const tag = parseVideoTag(p)
      if (tag.type === 'config') this.onConfig(this.video, tag.body)
      else if (tag.type === 'frame') this.onFrame(this.video, p.dts, tag.cts, tag.key, tag.body)
    } else if (p.codec_type === TAG_AUDIO) {
      const tag = parseAudioTag(p)
      if (tag.type === 'config') this.onConfig(this.audio, tag.body)
      else if (tag.type === 'frame') this.onFrame(this.audio, p.dts, 0, true, tag.body)
    }
  }

  /**
   * The publisher reconnected: what comes next continues the timeline after the last sample (its timestamps may
   * restart at 0 or jump) and starts a discontinuity segment on every track, at the next keyframe.
   */
  discontinuity(): void {
    this.video.clock.reset()
    this.audio.clock.reset()
    if (this.state === 'probing') {
      this.probe = []
      return
    }
    if (this.state !== 'running') return
    // Already cut (the publisher left, and now comes back): the timeline resumes where the first call left it.
    if (Number.isNaN(this.offsetMs) && this.discontinuityNext) return
    this.drainFollower(true)
    this.settleStaleCuts()
    let resume = -Infinity
    for (const t of [this.leader, this.follower]) {
      if (!t?.writer) continue
      resume = Math.max(resume, t.writer.endMs, t.lastMs)
      t.writer.finish()
    }
    this.resumeMs = Number.isFinite(resume) ? resume : 0
    this.offsetMs = Number.NaN
    this.forceCut = true
    this.discontinuityNext = true
  }

  /** The broadcast is over: everything held is written and every track ends. */
  end(): void {
    if (this.state === 'ended') return
    if (this.state === 'probing') this.startWith(this.available())
    this.drainFollower(true)
    this.settleStaleCuts()
    this.follower?.writer?.end()
    this.leader?.writer?.end()
    this.state = 'ended'
  }

  private onConfig(track: Track, body: Buffer): void {
    if (this.state === 'running' && track !== this.leader && track !== this.follower) return this.warnOnce(`late-${track.kind}`, 'a track appeared after the broadcast started: ignored')
    if (track.pending ? track.pending.bytes.equals(body) : track.config?.bytes.equals(body)) return // resent on reconnect
    const config = track.kind === 'video' ? videoConfig(body) : audioConfig(body)
    if (!track.writer) {
      track.writer = new TrackWriter(track.kind, this.window, config.info.timescale, this.partSeconds, (ts) => (track.kind === 'video' ? ts / 25 : AAC_FRAME))
      track.writer.initVersion = (this.initVersions[track.kind] ?? 0) - 1
    }
    if (this.state === 'probing' || !track.config) {
      track.config = config
      if (this.state === 'probing') this.maybeStart()
      return
    }
    this.log.info({ track: track.kind, codec: config.info.codec, width: config.info.width, height: config.info.height, sampleRate: config.info.sampleRate }, 'media configuration changed: new init segment at the next cut')
    track.pending = config
    this.forceCut = true
    // Audio frames after the change need the new init: none goes into the old segment. Video keeps its segment
    // until the keyframe that starts the new one.
    if (track.kind === 'audio') {
      this.drainFollower(true)
      track.writer.finish()
    }
  }

  private onFrame(track: Track, dts: number, ctsMs: number, key: boolean, body: Buffer): void {
    if (!track.config || !track.writer) return
    if (this.state === 'running' && track !== this.leader && track !== this.follower) return
    if (this.state === 'probing' && track === this.video && !key && !this.probe.some((e) => e.track === this.video)) return
    let ms = track.clock.unwrap(dts)
    if (this.state === 'running') {
      if (Number.isNaN(this.offsetMs)) this.offsetMs = this.resumeMs - ms
      if (ms + this.offsetMs < track.lastMs - REBASE_BACK_MS) {
        this.log.warn({ track: track.kind, from: track.lastMs, to: ms + this.offsetMs }, 'timestamps stepped back: a new timeline with a discontinuity')
        this.discontinuity()
        ms = track.clock.unwrap(dts)
        this.offsetMs = this.resumeMs - ms
      }
      ms += this.offsetMs
    }
    const pending: Pending = { ms, ctsMs, key, pos: track.writer.store.push(body), size: body.length, wall: this.wall() }
    if (this.state === 'probing') {
      this.probe.push({ track, p: pending })
      this.maybeStart()
    } else {
      this.enqueue(track, pending)
    }
  }

  /**
   * The wall time of a sample as its segment's date. For a stream continued from another node, the first sample is
   * dated where the previous node's media ended (at most the reconnect earlier than its arrival), and the rest follow
   * it: hls.js places segments after a discontinuity by their dates when the playlists it merges share no segment.
   */
  private wall(): number {
    const now = this.now()
    this.wallShift ??= this.endPdt !== undefined ? Math.max(0, now - this.endPdt) : 0
    return now - this.wallShift
  }

  /** The track set is known once both configurations came, or one track ran a part long without the other. */
  private maybeStart(): void {
    const span = (t: Track): number => {
      let first = Infinity
      let last = -Infinity
      for (const e of this.probe) {
        if (e.track !== t) continue
        first = Math.min(first, e.p.ms)
        last = Math.max(last, e.p.ms)
      }
      return last - first
    }
    const partMs = this.partSeconds * 1000
    const vSpan = this.video.config ? span(this.video) : -Infinity
    const aSpan = this.audio.config ? span(this.audio) : -Infinity
    if (vSpan >= 0 && this.audio.config) this.startWith(['video', 'audio'])
    else if (vSpan >= partMs && !this.audio.config) this.startWith(['video'])
    // Audio only; also when a video header came but no keyframe for two segments (a broken publisher's video).
    else if ((aSpan >= partMs && !this.video.config) || aSpan >= 2 * this.segmentMs) this.startWith(['audio'])
  }

  /** What `end()` can start with when the probing was cut short. */
  private available(): TrackKind[] {
    const kinds = new Set(this.probe.map((e) => e.track.kind))
    return (['video', 'audio'] as const).filter((k) => kinds.has(k))
  }

  private startWith(kinds: TrackKind[]): void {
    this.state = 'running'
    if (kinds.length === 0) return
    this.leader = kinds[0] === 'video' ? this.video : this.audio
    this.follower = kinds.length > 1 ? this.audio : null
    const first = this.probe.find((e) => e.track === this.leader)
    this.offsetMs = first ? -first.p.ms : 0
    for (const t of [this.leader, this.follower]) if (t?.writer && t.config) t.writer.setInit(t.config.info, t.config.init)
    this.window.startedAt = this.now()
    this.log.debug({ tracks: kinds }, 'tracks known')
    const probe = this.probe
    this.probe = []
    for (const { track, p } of probe) {
      if (track !== this.leader && track !== this.follower) continue
      p.ms += this.offsetMs
      this.enqueue(track, p)
    }
  }

  private enqueue(track: Track, p: Pending): void {
    track.lastMs = Math.max(track.lastMs, p.ms)
    if (track === this.leader) this.stepLeader(p)
    else track.queue.push(p)
    this.drainFollower(false)
  }

  /** Follower samples go once the leader has decided up to their time, or when the leader stalls a segment long. */
  private drainFollower(all: boolean): void {
    const f = this.follower
    if (!f) return
    const q = f.queue
    while (q.length > 0) {
      const head = q[0] as Pending
      if (!all && head.ms > this.leaderMs && (q[q.length - 1] as Pending).ms - head.ms < this.segmentMs) break
      q.shift()
      this.stepFollower(f, head)
    }
  }

  private stepLeader(p: Pending): void {
    const t = this.leader as Track
    const w = t.writer as TrackWriter
    this.leaderMs = p.ms
    if (!w.hasSegment && !p.key) return w.drop(p)
    const targetMs = this.cutsMade === 1 ? this.firstSegmentMs : this.segmentMs
    const cut = p.key && (!w.hasSegment || this.forceCut || w.segmentElapsedMs(p.ms) >= targetMs - (this.partSeconds * 1000) / 2)
    const newInit = cut && this.applyPending(t)
    const s = this.toSample(t, p)
    const prev = w.advance(s)
    if (cut) {
      this.cutsMade++
      const c: Cut = { msn: this.nextMsn++, ms: s.ms, discontinuity: this.discontinuityNext || newInit || this.follower?.pending != null }
      w.openSegment(c)
      if (this.follower) this.cuts.push(c)
      this.forceCut = false
      this.discontinuityNext = false
    } else if (prev && (w.partDue(prev.duration) || (t.kind === 'video' && s.key && w.partLongEnough()))) {
      // A keyframe inside a segment starts its own part when the part before is long enough: an independent part.
      w.flushPart()
    }
  }

  private stepFollower(t: Track, p: Pending): void {
    const w = t.writer as TrackWriter
    const c = this.cuts[0]
    const cut = c !== undefined && p.ms >= c.ms
    if (!w.hasSegment && !cut) return w.drop(p)
    const newInit = cut && this.applyPending(t)
    const prev = w.advance(this.toSample(t, p))
    if (cut) {
      this.cuts.shift()
      w.openSegment({ msn: c.msn, discontinuity: c.discontinuity || newInit })
    } else if (prev && w.partDue(prev.duration)) {
      w.flushPart()
    }
  }

  /**
   * Before a gap or the end: a cut the follower never reached (its media stopped before the leader's last keyframe)
   * gets the held sample, so that the follower does not skip an msn.
   */
  private settleStaleCuts(): void {
    const w = this.follower?.writer
    const c = this.cuts.shift()
    if (w && c && w.hasHeld) w.openSegment(c)
    if (this.cuts.length > 0) this.log.warn({ skipped: this.cuts.map((x) => x.msn) }, 'the follower track skips segments it has no samples for')
    this.cuts.length = 0
  }

  private applyPending(t: Track): boolean {
    if (!t.pending || !t.writer) return false
    t.config = t.pending
    t.pending = null
    t.writer.setInit(t.config.info, t.config.init)
    return true
  }

  /** Milliseconds to the track's timescale, from the timeline each time (no drift), strictly increasing. */
  private toSample(t: Track, p: Pending): Sample {
    const w = t.writer as TrackWriter
    const ts = w.timescale
    let dts = Math.round((p.ms * ts) / 1000)
    if (t.kind === 'audio' && w.lastDts >= 0 && Math.abs(dts - (w.lastDts + AAC_FRAME)) <= (AUDIO_SNAP_MS * ts) / 1000) dts = w.lastDts + AAC_FRAME
    if (dts <= w.lastDts) {
      dts = w.lastDts + 1
      this.clamped++
    }
    dts = Math.max(dts, 0)
    const cto = t.kind === 'video' ? Math.round(((p.ms + p.ctsMs) * ts) / 1000) - dts : 0
    return { dts, cto, ms: p.ms, key: p.key, pos: p.pos, size: p.size, wall: p.wall, duration: 0, flags: 0 }
  }

  private warnOnce(key: string, msg: string): void {
    if (this.warned.has(key)) return
    this.warned.add(key)
    this.log.warn(msg)
  }
}
