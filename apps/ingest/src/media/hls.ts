import { peakBandwidth } from './bandwidth.js'
import { initName, mediaPlaylistName, partName, segmentName } from './media-paths.js'
import type { MediaWindow, Segment, TrackKind, TrackWindow } from './window.js'

/**
 * LL-HLS (RFC 8216bis, EXT-X-VERSION 9) from a live window: the multivariant playlist, one media playlist per track,
 * delta updates and the rules of blocking playlist reload. Players without LL-HLS support read the same playlists as
 * ordinary HLS: they ignore the EXT-X-PART family and play the complete segments.
 *
 * Rendering walks the window, so it happens once per window change: `HlsPlaylists` caches the bytes per window
 * revision, per track and per skip flavour, and every request held on the same change shares them.
 */

const AUDIO_GROUP = 'audio'
/** Parts are listed for segments within this many target durations of the live edge (and at most this many segments). */
const PART_SEGMENTS = 3

const secs = (n: number, digits = 5): string => Number(n.toFixed(digits)).toString()

/** `EXT-X-TARGETDURATION`: the ceiling of the longest segment, never below the packager's target. */
export function targetDuration(w: MediaWindow, track: TrackWindow): number {
  let max = w.segmentTarget
  for (const s of track.segments) if (s.complete) max = Math.max(max, s.duration)
  return Math.max(1, Math.ceil(max - 1e-6))
}

/** `PART-TARGET`: the packager's target, or the longest part when one came out longer (a part must not exceed it). */
export function partTarget(w: MediaWindow, track: TrackWindow): number {
  let max = w.partTarget
  for (const s of track.segments) for (const p of s.parts) max = Math.max(max, p.duration)
  return Math.ceil(max * 1000 - 1e-6) / 1000
}

/** The longest a blocking request (playlist or preload-hinted part) is held: three target durations, per the spec. */
export function holdLimitMs(w: MediaWindow, track: TrackWindow): number {
  return targetDuration(w, track) * 3 * 1000
}

export interface PlaylistQuery {
  /** `_HLS_msn` / `_HLS_part`: hold until that part (or the whole segment when `part` is absent) is in the playlist. */
  msn?: number
  part?: number
  /** `_HLS_skip=YES|v2`: a delta update. */
  skip: boolean
}

/** Reads the LL-HLS delivery directives; an error message (answer 400) when they break RFC 8216bis's rules. */
export function parsePlaylistQuery(search: URLSearchParams): PlaylistQuery | { error: string } {
  const num = (name: string): number | undefined | null => {
    const v = search.get(name)
    if (v === null) return undefined
    return /^\d{1,12}$/.test(v) ? Number(v) : null
  }
  const msn = num('_HLS_msn')
  const part = num('_HLS_part')
  if (msn === null || part === null) return { error: '_HLS_msn and _HLS_part must be non-negative integers' }
  if (part !== undefined && msn === undefined) return { error: '_HLS_part needs _HLS_msn' }
  const skipValue = search.get('_HLS_skip')
  const q: PlaylistQuery = { skip: skipValue === 'YES' || skipValue === 'v2' }
  if (msn !== undefined) q.msn = msn
  if (part !== undefined) q.part = part
  return q
}

/** The last media segment of the playlist: the last complete one (the open one is only parts so far). */
function lastCompleteMsn(track: TrackWindow): number {
  const last = track.segments.at(-1)
  if (!last) return -1
  return last.complete ? last.msn : last.msn - 1
}

/**
 * What a blocking request waits for: `{ msn, part }` for `TrackWindow.waitFor`, null when it does not block, or an
 * error (400) when `_HLS_msn` is more than two segments past the playlist's last segment.
 */
export function blockingTarget(track: TrackWindow, q: PlaylistQuery): { msn: number; part: number } | null | { error: string } {
  if (q.msn === undefined) return null
  if (q.msn > lastCompleteMsn(track) + 2) return { error: '_HLS_msn is more than two segments ahead of the playlist' }
  // Without _HLS_part the request is for the whole segment: "part infinity" is reached when the segment completes.
  return { msn: q.msn, part: q.part ?? Number.MAX_SAFE_INTEGER }
}

/** The multivariant playlist, or null while the window has no track ready to describe. */
export function renderMultivariant(w: MediaWindow): string | null {
  const video = w.tracks.get('video')
  const audio = w.tracks.get('audio')
  const vInfo = video?.info
  const aInfo = audio?.info
  if (video && !vInfo) return null
  if (!vInfo && !aInfo) return null
  const lines = ['#EXTM3U', '#EXT-X-VERSION:9', '#EXT-X-INDEPENDENT-SEGMENTS']
  if (video && vInfo) {
    const attrs: string[] = []
    let bandwidth = peakBandwidth(video)
    const codecs = [vInfo.codec]
    if (audio && aInfo) {
      bandwidth += peakBandwidth(audio)
      codecs.push(aInfo.codec)
      const channels = aInfo.channels ? `,CHANNELS="${aInfo.channels}"` : ''
      lines.push(
        `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="${AUDIO_GROUP}",NAME="audio",DEFAULT=YES,AUTOSELECT=YES${channels},URI="${mediaPlaylistName('audio')}"`
      )
    }
    attrs.push(`BANDWIDTH=${bandwidth}`, `CODECS="${codecs.join(',')}"`)
    if (vInfo.width && vInfo.height) attrs.push(`RESOLUTION=${vInfo.width}x${vInfo.height}`)
    if (vInfo.frameRate) attrs.push(`FRAME-RATE=${vInfo.frameRate.toFixed(3)}`)
    if (audio && aInfo) attrs.push(`AUDIO="${AUDIO_GROUP}"`)
    lines.push(`#EXT-X-STREAM-INF:${attrs.join(',')}`, mediaPlaylistName('video'))
  } else if (audio && aInfo) {
    lines.push(`#EXT-X-STREAM-INF:BANDWIDTH=${peakBandwidth(audio)},CODECS="${aInfo.codec}"`, mediaPlaylistName('audio'))
  }
  return lines.join('\n') + '\n'
}

/** How many leading segments a delta update replaces with `EXT-X-SKIP`: those ending before the skip boundary. */
function skippable(segments: Segment[], canSkipUntil: number): number {
  let after = 0
  for (const s of segments) after += s.duration
  let n = 0
  for (const s of segments) {
    after -= s.duration
    // Keep at least one complete segment, and everything within the boundary.
    if (!s.complete || after < canSkipUntil || n >= segments.length - 2) break
    n++
  }
  return n
}

/** A media playlist, or null while the track has no init segment or no part yet. */
export function renderMediaPlaylist(w: MediaWindow, kind: TrackKind, skip: boolean): string | null {
  const track = w.tracks.get(kind)
  if (!track || !track.info) return null
  const segments = track.segments
  const first = segments[0]
  if (!first || (segments.length === 1 && first.parts.length === 0)) return null

  const td = targetDuration(w, track)
  const pt = partTarget(w, track)
  const canSkipUntil = td * 6
  const lines = [
    '#EXTM3U',
    '#EXT-X-VERSION:9',
    `#EXT-X-TARGETDURATION:${td}`,
    `#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=${secs(pt * 3, 3)},CAN-SKIP-UNTIL=${canSkipUntil}`,
    `#EXT-X-PART-INF:PART-TARGET=${secs(pt, 3)}`,
    `#EXT-X-MEDIA-SEQUENCE:${first.msn}`,
    `#EXT-X-DISCONTINUITY-SEQUENCE:${track.discontinuitySequence}`,
    '#EXT-X-INDEPENDENT-SEGMENTS'
  ]
  const skipped = skip ? skippable(segments, canSkipUntil) : 0
  if (skipped > 0) lines.push(`#EXT-X-SKIP:SKIPPED-SEGMENTS=${skipped}`)

  // Parts only for the segments near the live edge (RFC 8216bis: within three target durations of the end).
  // A preload hint after a closed segment opens the next segment's part list: it counts as one of those segments.
  const last = segments.at(-1) as Segment
  const hintOpensSegment = last.complete && !track.ended
  let partsFrom = segments.length
  let fromEnd = 0
  for (let i = segments.length - 1; i >= 0 && i >= segments.length - PART_SEGMENTS + (hintOpensSegment ? 1 : 0); i--) {
    if (fromEnd > td * 3) break
    partsFrom = i
    fromEnd += (segments[i] as Segment).duration
  }

  let prevInit = -1
  for (let i = skipped; i < segments.length; i++) {
    const s = segments[i] as Segment
    if (s.discontinuity) lines.push('#EXT-X-DISCONTINUITY')
    // Repeated after every discontinuity too: players reset their demuxer there and may ask for the init again.
    if (s.initVersion !== prevInit || s.discontinuity) lines.push(`#EXT-X-MAP:URI="${initName(kind, s.initVersion)}"`)
    prevInit = s.initVersion
    if (!s.complete && s.parts.length === 0) break
    lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(s.programDateTime).toISOString()}`)
    if (i >= partsFrom) {
      for (const p of s.parts) {
        const independent = p.independent ? ',INDEPENDENT=YES' : ''
        lines.push(`#EXT-X-PART:DURATION=${secs(p.duration)},URI="${partName(kind, s.msn, p.index)}"${independent}`)
      }
    }
    if (s.complete) lines.push(`#EXTINF:${secs(s.duration)},`, segmentName(kind, s.msn))
  }

  if (track.ended) {
    lines.push('#EXT-X-ENDLIST')
  } else {
    const hint = last.complete ? partName(kind, last.msn + 1, 0) : partName(kind, last.msn, last.parts.length)
    lines.push(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="${hint}"`)
  }
  for (const [otherKind, other] of w.tracks) {
    if (otherKind === kind) continue
    const report = renditionReport(other)
    if (report) lines.push(`#EXT-X-RENDITION-REPORT:URI="${mediaPlaylistName(otherKind)}",LAST-MSN=${report.msn},LAST-PART=${report.part}`)
  }
  return lines.join('\n') + '\n'
}

/** Where another rendition's playlist ends: its last part. */
function renditionReport(track: TrackWindow): { msn: number; part: number } | null {
  for (let i = track.segments.length - 1; i >= 0; i--) {
    const s = track.segments[i] as Segment
    if (s.parts.length > 0) return { msn: s.msn, part: s.parts.length - 1 }
  }
  return null
}

type Cached = { revision: string; byKey: Map<string, Buffer | number | null> }

/** Renders each playlist once per window change and hands every request the same bytes. */
export class HlsPlaylists {
  private readonly cache = new WeakMap<MediaWindow, Cached>()

  multivariant(w: MediaWindow): Buffer | null {
    return this.cached(w, 'index', () => {
      const text = renderMultivariant(w)
      return text === null ? null : Buffer.from(text)
    })
  }

  media(w: MediaWindow, kind: TrackKind, skip: boolean): Buffer | null {
    return this.cached(w, skip ? `${kind}+skip` : kind, () => {
      const text = renderMediaPlaylist(w, kind, skip)
      return text === null ? null : Buffer.from(text)
    })
  }

  /** `holdLimitMs` of a track, computed once per window change like the playlists. */
  holdMs(w: MediaWindow, track: TrackWindow): number {
    return this.cached(w, `${track.kind}:hold`, () => holdLimitMs(w, track))
  }

  private cached<T extends Buffer | number | null>(w: MediaWindow, key: string, render: () => T): T {
    const revision = w.revision
    let c = this.cache.get(w)
    if (!c || c.revision !== revision) {
      c = { revision, byKey: new Map() }
      this.cache.set(w, c)
    }
    let out = c.byKey.get(key) as T | undefined
    if (out === undefined) {
      out = render()
      c.byKey.set(key, out)
    }
    return out
  }
}
