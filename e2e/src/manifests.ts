/**
 * Just enough HLS and DASH reading for the tests to follow a player's path: from a playlist to its segments, from a
 * manifest to its video and audio representations. Not a general parser.
 */

/** The media segment URIs of an HLS media playlist, in playlist order, resolved against the playlist's URL. */
export function hlsSegmentUrls(playlist: string, playlistUrl: string): string[] {
  return playlist
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((uri) => new URL(uri, playlistUrl).toString())
}

export interface DashRepresentation {
  /** The adaptation set's content type: `contentType`, else the major part of `mimeType` (`video`, `audio`). */
  kind: string
  id: string
  /** RFC 6381 codec string (`avc1.64001e`, `mp4a.40.2`). */
  codecs: string
}

const attr = (tag: string, name: string): string | undefined => new RegExp(`\\b${name}="([^"]*)"`).exec(tag)?.[1]

/** Every Representation of a DASH manifest with the kind of its adaptation set and its codecs. */
export function dashRepresentations(mpd: string): DashRepresentation[] {
  const out: DashRepresentation[] = []
  for (const set of mpd.matchAll(/<AdaptationSet\b([^>]*)>([\s\S]*?)<\/AdaptationSet>/g)) {
    const setAttrs = set[1] ?? ''
    for (const rep of (set[2] ?? '').matchAll(/<Representation\b([^>]*)>/g)) {
      const repAttrs = rep[1] ?? ''
      const mime = attr(repAttrs, 'mimeType') ?? attr(setAttrs, 'mimeType')
      out.push({
        kind: attr(setAttrs, 'contentType') ?? mime?.split('/')[0] ?? '?',
        id: attr(repAttrs, 'id') ?? '?',
        codecs: attr(repAttrs, 'codecs') ?? attr(setAttrs, 'codecs') ?? '?'
      })
    }
  }
  return out
}

/** The media playlists a multivariant HLS playlist points at: its first variant and its audio rendition, if any. */
export function hlsMediaPlaylists(multivariant: string, url: string): { video?: string; audio?: string; variant: string } {
  const lines = multivariant.split(/\r?\n/).map((l) => l.trim())
  const variantUri = lines.find((l, i) => l !== '' && !l.startsWith('#') && lines[i - 1]?.startsWith('#EXT-X-STREAM-INF'))
  if (!variantUri) throw new Error(`no variant in the multivariant playlist:\n${multivariant}`)
  const inf = lines.find((l) => l.startsWith('#EXT-X-STREAM-INF')) ?? ''
  const audioUri = lines.find((l) => l.startsWith('#EXT-X-MEDIA:') && /TYPE=AUDIO/.test(l))?.match(/URI="([^"]+)"/)?.[1]
  const variant = new URL(variantUri, url).toString()
  const hasVideo = /CODECS="[^"]*avc1/.test(inf)
  return {
    variant,
    ...(hasVideo ? { video: variant } : { audio: variant }),
    ...(audioUri ? { audio: new URL(audioUri, url).toString() } : {})
  }
}

/** The init segment (EXT-X-MAP) and the complete segments of a CMAF media playlist, resolved against its URL. */
export function hlsCmafSegments(playlist: string, url: string): { init: string; segments: string[] } {
  const map = /#EXT-X-MAP:URI="([^"]+)"/g
  let init: string | undefined
  for (const m of playlist.matchAll(map)) init = m[1]
  if (!init) throw new Error(`no EXT-X-MAP in the media playlist:\n${playlist}`)
  return { init: new URL(init, url).toString(), segments: hlsSegmentUrls(playlist, url) }
}
