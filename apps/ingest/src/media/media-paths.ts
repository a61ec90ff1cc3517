import type { TrackKind } from './window.js'

/**
 * The URL scheme of the media plane, in one place. Playlists and the MPD point at the same init/part/segment URLs, so
 * a CDN caches each set of bytes once:
 *
 * - `/hls/<id>/index.m3u8` multivariant playlist (the stream's `playback_url`)
 * - `/hls/<id>/video.m3u8`, `/hls/<id>/audio.m3u8` media playlists
 * - `/hls/<id>/<v|a>/init-<version>.mp4` init segments
 * - `/hls/<id>/<v|a>/<msn>.m4s` segments; `/hls/<id>/<v|a>/<msn>.<part>.m4s` parts
 * - `/dash/<id>/index.mpd` the MPD (its URLs are relative: `../../hls/<id>/...`)
 * - `/time` the clock for DASH `UTCTiming`
 *
 * Only a playback id and names built here are ever matched; nothing reaches a file system.
 */

export const TRACK_DIR: Record<TrackKind, string> = { video: 'v', audio: 'a' }
const KIND_OF_DIR: Record<string, TrackKind> = { v: 'video', a: 'audio' }

export const mediaPlaylistName = (kind: TrackKind): string => `${kind}.m3u8`
export const initName = (kind: TrackKind, version: number): string => `${TRACK_DIR[kind]}/init-${version}.mp4`
export const segmentName = (kind: TrackKind, msn: number): string => `${TRACK_DIR[kind]}/${msn}.m4s`
export const partName = (kind: TrackKind, msn: number, part: number): string => `${TRACK_DIR[kind]}/${msn}.${part}.m4s`

export type MediaRoute =
  | { type: 'multivariant'; id: string }
  | { type: 'playlist'; id: string; kind: TrackKind }
  | { type: 'mpd'; id: string }
  | { type: 'init'; id: string; kind: TrackKind; version: number }
  | { type: 'segment'; id: string; kind: TrackKind; msn: number }
  | { type: 'part'; id: string; kind: TrackKind; msn: number; part: number }

const ID = '([A-Za-z0-9_-]{1,64})'
const N = '(\\d{1,12})'
const HLS_PLAYLIST = new RegExp(`^/hls/${ID}/(index|video|audio)\\.m3u8$`)
const HLS_MEDIA = new RegExp(`^/hls/${ID}/([va])/(?:init-${N}\\.mp4|${N}\\.m4s|${N}\\.${N}\\.m4s)$`)
const MPD = new RegExp(`^/dash/${ID}/index\\.mpd$`)

/** The route of a path (query already removed), or null: anything else is a 404. */
export function parseMediaPath(path: string): MediaRoute | null {
  let m = HLS_PLAYLIST.exec(path)
  if (m) {
    const id = m[1] as string
    return m[2] === 'index' ? { type: 'multivariant', id } : { type: 'playlist', id, kind: m[2] as TrackKind }
  }
  m = MPD.exec(path)
  if (m) return { type: 'mpd', id: m[1] as string }
  m = HLS_MEDIA.exec(path)
  if (!m) return null
  const [, id, dir, init, seg, partMsn, part] = m as unknown as [string, string, string, string?, string?, string?, string?]
  const kind = KIND_OF_DIR[dir] as TrackKind
  if (init !== undefined) return { type: 'init', id, kind, version: Number(init) }
  if (seg !== undefined) return { type: 'segment', id, kind, msn: Number(seg) }
  return { type: 'part', id, kind, msn: Number(partMsn), part: Number(part) }
}
