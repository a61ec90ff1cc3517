import type http from 'node:http'
import { DashManifests } from './dash.js'
import { blockingTarget, HlsPlaylists, parsePlaylistQuery } from './hls.js'
import type { MediaRoute } from './media-paths.js'
import type { MediaWindow, MediaWindows, Segment, TrackKind, TrackWindow } from './window.js'

/**
 * Answers the media routes of `media-paths.ts` from the live windows in memory: playlists and the MPD (blocking
 * reload held on the window), init segments, parts (the preload-hinted next part is held until written) and
 * segments (one still being written goes out with chunked transfer, a part at a time, as `availabilityTimeOffset`
 * promises DASH players).
 */

/** Part and segment URLs always name the same bytes. The window is seconds long; five minutes covers any CDN hop. */
const MEDIA_CACHE = 'public, max-age=300, immutable'
/** Playlists change every part: a CDN may collapse a second's requests, no more. */
const PLAYLIST_CACHE = 'public, max-age=1'
/**
 * How long a media playlist request waits for the broadcast's first segment to complete. Until it does, the playlist
 * has parts but no EXTINF, and hls.js 1.7 calls such a first playlist empty and gives up for good (levelEmptyError,
 * fatal): with a 250-frame GOP that was every player opened in the first 10 s. Below hls.js's 10 s time to first
 * byte, so a longer GOP gets a 503 it retries rather than a timeout.
 */
const FIRST_SEGMENT_HOLD_MS = 9_000
/**
 * While the publisher is away a blocking playlist request is held at most this long, then answered with the playlist
 * as it is. hls.js gives up on a blocking reload after about four part targets and, after that error, did not resume
 * across the discontinuity of a stream that moved to another node (the move takes a reconnect: a second or two); an
 * unchanged playlist only makes it ask again.
 */
const AWAY_HOLD_MS = 1_000

export type Answer = (status: number, message: string) => void
export type Headers = Record<string, string | number>

export interface MediaRoutesOptions {
  windows: MediaWindows
  /** Upper bound on any hold (blocking reload, preload hint, chunked segment), ms; the spec's is 3 target durations. */
  maxHoldMs?: number
}

export class MediaRoutes {
  private readonly playlists = new HlsPlaylists()
  private readonly manifests = new DashManifests()
  /** A closed segment's bytes, joined once for every request. */
  private readonly joined = new WeakMap<Segment, Buffer>()
  private readonly headers = new WeakMap<Buffer, Headers>()

  constructor(private readonly opts: MediaRoutesOptions) {}

  /**
   * Serves one route on `res`, with the `base` headers (security, CORS) the server adds to every answer; errors go to
   * `fail`, the server's one error answer. Resolves `not-here` without answering when this node has no window for the
   * playback id, or stopped serving it while the request was held (the stream moved to another node): the caller
   * then asks the node that has it.
   */
  async serve(
    route: MediaRoute,
    search: URLSearchParams,
    res: http.ServerResponse,
    base: Headers,
    head: boolean,
    fail: Answer
  ): Promise<void | 'not-here'> {
    const w = this.opts.windows.get(route.id)
    if (!w) return 'not-here'
    const gone = () => this.opts.windows.get(route.id) !== w
    const send = (type: string, cache: string, body: Buffer) => {
      // The header object is built once per body: every viewer held on a playlist change gets the same one.
      let headers = this.headers.get(body)
      if (!headers) {
        headers = { ...base, 'content-type': type, 'cache-control': cache, 'content-length': body.length }
        this.headers.set(body, headers)
      }
      res.writeHead(200, headers)
      res.end(head ? undefined : body)
    }
    switch (route.type) {
      case 'multivariant': {
        const text = this.playlists.multivariant(w)
        return text ? send('application/vnd.apple.mpegurl', PLAYLIST_CACHE, text) : fail(404, 'not found')
      }
      case 'mpd': {
        const text = this.manifests.mpd(w)
        return text ? send('application/dash+xml', PLAYLIST_CACHE, text) : fail(404, 'not found')
      }
      case 'playlist': {
        const track = w.tracks.get(route.kind)
        if (!track) return fail(404, 'not found')
        const q = parsePlaylistQuery(search)
        if ('error' in q) return fail(400, q.error)
        const target = blockingTarget(track, q)
        if (target && 'error' in target) return fail(400, target.error)
        if (target && !(await track.waitFor(target.msn, target.part, w.publisherAway ? Math.min(AWAY_HOLD_MS, this.holdMs(w, track)) : this.holdMs(w, track)))) {
          if (gone()) return 'not-here'
          if (!w.publisherAway) return fail(503, 'the requested part did not arrive in time')
        }
        const first = track.segments[0]
        if (first && !first.complete && !track.ended && !(await track.waitFor(first.msn, Number.MAX_SAFE_INTEGER, this.firstSegmentHoldMs()))) {
          return gone() ? 'not-here' : fail(503, 'the first segment is not complete yet')
        }
        const text = this.playlists.media(w, route.kind, q.skip)
        return text ? send('application/vnd.apple.mpegurl', PLAYLIST_CACHE, text) : fail(404, 'not found')
      }
      case 'init': {
        const init = w.tracks.get(route.kind)?.inits.get(route.version)
        return init ? send(`${route.kind}/mp4`, MEDIA_CACHE, init.bytes) : fail(404, 'not found')
      }
      case 'part': {
        const track = w.tracks.get(route.kind)
        if (!track) return fail(404, 'not found')
        let part = track.part(route.msn, route.part)
        if (!part && isNextPart(track, route.msn, route.part)) {
          await track.waitFor(route.msn, route.part, this.holdMs(w, track))
          if (gone()) return 'not-here'
          part = track.part(route.msn, route.part)
        }
        return part ? send(mediaType(route.kind), MEDIA_CACHE, part.bytes) : fail(404, 'not found')
      }
      case 'segment': {
        const track = w.tracks.get(route.kind)
        if (!track) return fail(404, 'not found')
        let seg = track.segment(route.msn)
        const last = track.segments.at(-1)
        if (!seg && last && route.msn === last.msn + 1 && !track.ended) {
          // Asked a moment early (clock skew against availabilityTimeOffset): wait for its first part.
          await track.waitFor(route.msn, 0, this.holdMs(w, track))
          if (gone()) return 'not-here'
          seg = track.segment(route.msn)
        }
        if (!seg || (seg.complete && seg.parts.length === 0)) return fail(404, 'not found')
        if (seg.complete) return send(mediaType(route.kind), MEDIA_CACHE, this.bytesOf(seg))
        return this.streamOpenSegment(track, seg, res, { ...base, 'content-type': mediaType(route.kind), 'cache-control': MEDIA_CACHE }, head, this.holdMs(w, track), gone)
      }
    }
  }

  private firstSegmentHoldMs(): number {
    return Math.min(FIRST_SEGMENT_HOLD_MS, this.opts.maxHoldMs ?? Infinity)
  }

  private holdMs(w: MediaWindow, track: TrackWindow): number {
    return Math.min(this.playlists.holdMs(w, track), this.opts.maxHoldMs ?? Infinity)
  }

  private bytesOf(seg: Segment): Buffer {
    let bytes = this.joined.get(seg)
    if (!bytes) {
      bytes = Buffer.concat(seg.parts.map((p) => p.bytes))
      this.joined.set(seg, bytes)
    }
    return bytes
  }

  /** Chunked transfer of a segment still being written: its parts so far, then each one as it completes. */
  private async streamOpenSegment(track: TrackWindow, seg: Segment, res: http.ServerResponse, headers: Headers, head: boolean, holdMs: number, moved: () => boolean) {
    res.writeHead(200, headers)
    if (head) return void res.end()
    let gone = false
    res.on('close', () => (gone = true))
    let sent = 0
    for (;;) {
      while (sent < seg.parts.length) res.write((seg.parts[sent++] as Segment['parts'][number]).bytes)
      if (seg.complete) return void res.end()
      const more = await track.waitFor(seg.msn, sent, holdMs)
      if (gone) return
      // The stream moved to another node mid-segment: what was sent is whole parts, a shorter segment that plays;
      // the next one comes from the node that has the stream now.
      if (moved()) return void res.end()
      // No new part within the hold, or the segment left the window: cut the answer short so the player retries.
      if (!more || track.segment(seg.msn) !== seg) return void res.destroy()
    }
  }
}

const mediaType = (kind: TrackKind): string => (kind === 'video' ? 'video/iso.segment' : 'audio/iso.segment')

/** The part a preload hint names: the next one of the open segment, or the first of the segment after the last. */
function isNextPart(track: TrackWindow, msn: number, part: number): boolean {
  const last = track.segments.at(-1)
  if (!last || track.ended) return false
  if (msn === last.msn + 1) return part === 0
  return msn === last.msn && !last.complete && part === last.parts.length
}
