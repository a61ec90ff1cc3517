import type { TrackWindow } from './window.js'

/** Used until a track has a complete segment to measure. */
const ESTIMATE: Record<TrackWindow['kind'], number> = { video: 3_000_000, audio: 128_000 }

/**
 * Bits per second of a track for `BANDWIDTH` (HLS) and `@bandwidth` (DASH): the peak over the window's complete
 * segments (HLS wants the peak segment bit rate), or an estimate before there is one.
 */
export function peakBandwidth(track: TrackWindow): number {
  let peak = 0
  for (const s of track.segments) {
    if (!s.complete || s.duration <= 0) continue
    let bytes = 0
    for (const p of s.parts) bytes += p.bytes.length
    peak = Math.max(peak, (bytes * 8) / s.duration)
  }
  return peak > 0 ? Math.ceil(peak) : ESTIMATE[track.kind]
}
