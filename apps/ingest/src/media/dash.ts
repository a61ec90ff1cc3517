import { peakBandwidth } from './bandwidth.js'
import { TRACK_DIR } from './media-paths.js'
import { availabilityStart, type MediaWindow, type Segment, type TrackKind, type TrackWindow } from './window.js'

/**
 * A dynamic, low-latency MPD over the same segments the HLS playlists list (`../../hls/<id>/<v|a>/...`).
 *
 * Choices:
 * - `SegmentTemplate` + `SegmentTimeline`, `$Number$` = msn, `t` = `baseMediaDecodeTime`, each track's own timescale;
 *   one AdaptationSet per track.
 * - A new Period at each discontinuity (the packager marks reconnects and init changes so). A Period's place is fixed
 *   the first time it is rendered and kept for the window's life, so that later MPDs never move it. The window's first
 *   Period sits at its first segment's `programDateTime`. A later one follows its predecessor on the media timeline
 *   (the packager carries one millisecond timeline through reconnects and init changes), so the two neither overlap
 *   nor leave a gap, unless the publisher was away longer than `PERIOD_GAP_MS` by the wall clock: then it sits at its
 *   own date, never earlier than where the media timeline puts it. Arrival times jitter and encoders send their first
 *   half second in a burst: placed by them, an init change's two Periods overlapped or left a gap of that much.
 *   `presentationTimeOffset` maps each track's decode times onto its Period from the same media time, so audio and
 *   video stay as the encoder timed them.
 * - The segment being written is listed with the target duration (its real one is unknown until it closes; the next
 *   MPD corrects it). With `availabilityTimeOffset` = segment target - part target it becomes available once its
 *   first part is: media HTTP answers such a request with chunked transfer, one part at a time.
 * - `UTCTiming` http-iso points at ingest's own `/time`, so dash.js syncs with no internet access.
 */

const ISO_DURATION = (s: number): string => `PT${Number(s.toFixed(3))}S`
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** Where each Period sits, decided once per window. */
interface Anchors {
  /** `availabilityStartTime`, epoch ms. */
  ast: number
  /**
   * By Period id (its discontinuity sequence number): start in ms after `ast`, the media time (ms on the packager's
   * timeline) of the leader's first segment in it, and the `presentationTimeOffset` of each track.
   */
  periods: Map<number, PeriodAnchor>
}

interface PeriodAnchor {
  startMs: number
  mediaMs: number
  pto: Map<TrackKind, number>
}

/**
 * A publisher away for longer than this (by the wall clock) leaves a gap between the Periods before and after, as long
 * as it was away: the player's clock stays the wall clock. Shorter, the next Period follows on without a gap.
 */
export const PERIOD_GAP_MS = 1000

/** The timescale of a segment's decode times: that of the init it needs. */
const timescaleOf = (track: TrackWindow, seg: Segment): number => track.inits.get(seg.initVersion)?.info.timescale ?? track.info?.timescale ?? 1000

/** Media time (ms) of a segment on the packager's timeline. */
const mediaMsOf = (track: TrackWindow, seg: Segment): number => (seg.baseMediaDecodeTime * 1000) / timescaleOf(track, seg)

/**
 * Each segment of a track with the discontinuity sequence number it belongs to (the Period id), numbered as HLS
 * players number them: a discontinuity on the first listed segment counts too. So a segment keeps its Period id when
 * it becomes the window's first, and a stream continued on another node (whose first segment is a discontinuity)
 * opens a new Period after the last one the previous node listed.
 */
function periodsOf(track: TrackWindow): Array<{ seg: Segment; period: number }> {
  let period = track.discontinuitySequence
  return track.segments.map((seg) => {
    if (seg.discontinuity) period++
    return { seg, period }
  })
}

/** The latency dash.js aims for in low-latency mode (ServiceDescription), in ms. */
export function latencyTargetMs(w: MediaWindow): number {
  return Math.round(Math.max(2.5, 1.5 * w.segmentTarget) * 1000)
}

export function renderMpd(w: MediaWindow, anchors: Anchors, now = Date.now()): string | null {
  const leader = w.leader
  const first = leader?.segments[0]
  if (!leader || !leader.info || !first) return null
  const tracks = [...w.tracks.values()].filter((t) => t.info && t.segments.length > 0)
  const id = w.playbackId

  const leaderPeriods = periodsOf(leader)
  // Fix new Periods from the leader's first segment in them.
  for (const { seg, period } of leaderPeriods) {
    if (anchors.periods.has(period)) continue
    const mediaMs = mediaMsOf(leader, seg)
    const byDate = Math.max(0, seg.programDateTime - anchors.ast)
    const before = anchors.periods.get(period - 1)
    let startMs = byDate
    if (before) {
      const byMedia = before.startMs + Math.max(0, mediaMs - before.mediaMs)
      startMs = byDate - byMedia > PERIOD_GAP_MS ? byDate : byMedia
    }
    anchors.periods.set(period, { startMs, mediaMs, pto: new Map() })
  }
  const periodIds = [...new Set(leaderPeriods.map((p) => p.period))]
  const target = latencyTargetMs(w)
  const ato = Math.max(0, w.segmentTarget - w.partTarget)

  const out: string[] = []
  const mpdAttrs = [
    'xmlns="urn:mpeg:dash:schema:mpd:2011"',
    'profiles="urn:mpeg:dash:profile:isoff-live:2011"',
    'type="dynamic"',
    `availabilityStartTime="${new Date(anchors.ast).toISOString()}"`,
    `publishTime="${new Date(now).toISOString()}"`,
    `timeShiftBufferDepth="${ISO_DURATION(w.keepSegments * w.segmentTarget)}"`,
    `suggestedPresentationDelay="${ISO_DURATION(target / 1000)}"`,
    `maxSegmentDuration="${ISO_DURATION(Math.max(w.segmentTarget, ...leader.segments.map((s) => s.duration)))}"`,
    `minBufferTime="${ISO_DURATION(w.partTarget * 2)}"`
  ]
  const ended = w.ended
  if (ended) {
    const last = leader.segments.at(-1) as Segment
    const p = anchors.periods.get(periodIds.at(-1) as number) as PeriodAnchor
    const ts = leader.info.timescale
    const pto = ptoFor(anchors, periodIds.at(-1) as number, leader, leaderPeriods)
    mpdAttrs.push(`mediaPresentationDuration="${ISO_DURATION(p.startMs / 1000 + (last.baseMediaDecodeTime - pto) / ts + last.duration)}"`)
  } else {
    mpdAttrs.push(`minimumUpdatePeriod="${ISO_DURATION(Math.max(0.5, w.segmentTarget / 2))}"`)
  }
  out.push('<?xml version="1.0" encoding="UTF-8"?>', `<MPD ${mpdAttrs.join(' ')}>`)
  out.push(
    '  <ServiceDescription id="0">',
    `    <Latency target="${target}" min="${Math.round(target / 2)}" max="${target * 2}"/>`,
    '    <PlaybackRate min="0.96" max="1.04"/>',
    '  </ServiceDescription>'
  )

  for (const period of periodIds) {
    const anchor = anchors.periods.get(period) as PeriodAnchor
    out.push(`  <Period id="p${period}" start="${ISO_DURATION(anchor.startMs / 1000)}">`)
    for (const track of tracks) {
      const mine = periodsOf(track).filter((p) => p.period === period)
      const firstSeg = mine[0]?.seg
      if (!firstSeg) continue
      const info = track.inits.get(firstSeg.initVersion)?.info ?? track.info
      if (!info) continue
      const ts = info.timescale
      const pto = ptoFor(anchors, period, track, mine)
      const dir = `../../hls/${id}/${TRACK_DIR[track.kind]}`
      const isVideo = track.kind === 'video'
      out.push(
        `    <AdaptationSet id="${isVideo ? 0 : 1}" contentType="${track.kind}" mimeType="${track.kind}/mp4" segmentAlignment="true" startWithSAP="1">`
      )
      const rep = [`id="${track.kind}"`, `codecs="${esc(info.codec)}"`, `bandwidth="${peakBandwidth(track)}"`]
      if (info.width && info.height) rep.push(`width="${info.width}"`, `height="${info.height}"`)
      if (info.frameRate) rep.push(`frameRate="${Number(info.frameRate.toFixed(3))}"`)
      if (info.sampleRate) rep.push(`audioSamplingRate="${info.sampleRate}"`)
      out.push(`      <Representation ${rep.join(' ')}>`)
      if (info.channels) {
        out.push(`        <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="${info.channels}"/>`)
      }
      out.push(
        `        <SegmentTemplate timescale="${ts}" presentationTimeOffset="${pto}" startNumber="${firstSeg.msn}"` +
          ` initialization="${dir}/init-${firstSeg.initVersion}.mp4" media="${dir}/$Number$.m4s"` +
          ` availabilityTimeOffset="${Number(ato.toFixed(3))}" availabilityTimeComplete="false">`,
        '          <SegmentTimeline>'
      )
      for (let i = 0; i < mine.length; i++) {
        const s = (mine[i] as { seg: Segment }).seg
        const next = mine[i + 1]?.seg
        let d: number
        if (next) d = next.baseMediaDecodeTime - s.baseMediaDecodeTime
        else if (s.complete) d = Math.round(s.duration * ts)
        else d = Math.round(Math.max(s.duration, w.segmentTarget) * ts)
        out.push(`            <S t="${s.baseMediaDecodeTime}" d="${d}"/>`)
      }
      out.push('          </SegmentTimeline>', '        </SegmentTemplate>', '      </Representation>', '    </AdaptationSet>')
    }
    out.push('  </Period>')
  }
  // Periods that slid out of the window are not needed again.
  for (const period of anchors.periods.keys()) if (period < (periodIds[0] as number)) anchors.periods.delete(period)
  out.push('  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="../../time"/>', '</MPD>')
  return out.join('\n') + '\n'
}

/**
 * A track's `presentationTimeOffset` in a Period: its decode time at the Period's start, from the media time of the
 * leader's first segment in it (all tracks share the packager's timeline), fixed the first time.
 */
function ptoFor(anchors: Anchors, period: number, track: TrackWindow, mine: Array<{ seg: Segment; period: number }>): number {
  const p = anchors.periods.get(period) as PeriodAnchor
  let pto = p.pto.get(track.kind)
  if (pto === undefined) {
    const seg = (mine.find((m) => m.period === period) as { seg: Segment }).seg
    const ts = timescaleOf(track, seg)
    // Never above the track's first decode time in the Period: nothing of it may fall before the Period's start.
    pto = Math.max(0, Math.min(seg.baseMediaDecodeTime, Math.round((p.mediaMs * ts) / 1000)))
    p.pto.set(track.kind, pto)
  }
  return pto
}

type Cached = { revision: string; mpd: Buffer | null; anchors: Anchors }

/** Renders the MPD once per window change, and keeps each window's Period anchors. */
export class DashManifests {
  private readonly cache = new WeakMap<MediaWindow, Cached>()

  mpd(w: MediaWindow): Buffer | null {
    const revision = w.revision
    let c = this.cache.get(w)
    if (c && c.revision === revision) return c.mpd
    if (!c) {
      const ast = availabilityStart(w)
      if (ast === null) return null
      c = { revision: '', mpd: null, anchors: { ast, periods: new Map() } }
      this.cache.set(w, c)
    }
    const text = renderMpd(w, c.anchors)
    c.revision = revision
    c.mpd = text === null ? null : Buffer.from(text)
    return c.mpd
  }
}
