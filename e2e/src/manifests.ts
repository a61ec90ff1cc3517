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
