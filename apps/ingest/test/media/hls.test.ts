import t from 'tap'
import { parse, setOptions, type types } from 'hls-parser'
import {
  blockingTarget,
  HlsPlaylists,
  parsePlaylistQuery,
  renderMediaPlaylist,
  renderMultivariant,
  type PlaylistQuery
} from '../../src/media/hls.js'
import { addFakePart, fakeWindow, T0, writeSegment } from '../helper.js'

// Strict mode: hls-parser throws on what RFC 8216bis forbids (part durations, parts too far from the edge, hold-backs).
setOptions({ strictMode: true, silent: true })

const media = (text: string | null) => parse(text as string) as types.MediaPlaylist
const master = (text: string | null) => parse(text as string) as types.MasterPlaylist
/** The segments with a URI: hls-parser also returns the parts and preload hint after the last segment as one. */
const full = (p: types.MediaPlaylist) => p.segments.filter((s) => s.uri !== '')
const query = (s: string) => parsePlaylistQuery(new URLSearchParams(s)) as PlaylistQuery

t.test('the multivariant playlist has one variant with bandwidth, codecs, resolution and the audio group', async (t) => {
  const w = fakeWindow()
  writeSegment(w, { partBytes: 25_000 })
  const text = renderMultivariant(w)
  const p = master(text)
  t.equal(p.variants.length, 1)
  const v = p.variants[0] as types.Variant
  t.equal(v.uri, 'video.m3u8')
  t.equal(v.codecs, 'avc1.64001f,mp4a.40.2')
  t.same(v.resolution, { width: 1280, height: 720 })
  t.equal(v.frameRate, 30)
  // Measured: 4 parts x 25,000 bytes over 2 s = 400 kbit/s per track, video and audio together.
  t.equal(v.bandwidth, 800_000)
  t.equal(v.audio.length, 1)
  t.equal(v.audio[0]?.uri, 'audio.m3u8')
  t.equal(v.audio[0]?.groupId, 'audio')
  t.equal(v.audio[0]?.isDefault, true)
  t.match(text, /^#EXT-X-VERSION:9$/m)
  t.match(text, /CHANNELS="2"/)
})

t.test('before any segment completes the bandwidth is an estimate', async (t) => {
  const w = fakeWindow()
  writeSegment(w, { complete: false, parts: 1 })
  t.ok((master(renderMultivariant(w)).variants[0] as types.Variant).bandwidth > 1_000_000)
})

t.test('an audio-only broadcast has the audio playlist as its only variant', async (t) => {
  const w = fakeWindow({ video: false })
  writeSegment(w)
  const p = master(renderMultivariant(w))
  t.equal(p.variants.length, 1)
  t.equal(p.variants[0]?.uri, 'audio.m3u8')
  t.equal(p.variants[0]?.codecs, 'mp4a.40.2')
  t.equal(p.variants[0]?.audio.length, 0)
})

t.test('nothing is described before the video track has its init segment', async (t) => {
  const w = fakeWindow({ video: false })
  w.track('video')
  t.equal(renderMultivariant(w), null)
  t.equal(renderMediaPlaylist(fakeWindow(), 'video', false), null, 'no segment yet')
})

t.test('a media playlist carries every LL-HLS tag', async (t) => {
  const w = fakeWindow()
  for (let i = 0; i < 4; i++) writeSegment(w)
  const open = writeSegment(w, { complete: false, parts: 2 })
  const text = renderMediaPlaylist(w, 'video', false) as string
  const p = media(text)
  t.equal(p.version, 9)
  t.equal(p.targetDuration, 2)
  t.equal(p.mediaSequenceBase, 0)
  t.equal(p.discontinuitySequenceBase, 0)
  t.equal(p.partTargetDuration, 0.5)
  t.equal(p.lowLatencyCompatibility?.canBlockReload, true)
  t.ok((p.lowLatencyCompatibility?.partHoldBack ?? 0) >= 3 * 0.5, 'PART-HOLD-BACK at least three part targets')
  t.ok((p.lowLatencyCompatibility?.canSkipUntil ?? 0) >= 6 * 2, 'CAN-SKIP-UNTIL at least six target durations')
  t.equal(p.endlist, false)
  // Four complete segments, then the open one (its parts and the preload hint).
  t.same(
    p.segments.map((s) => s.uri),
    ['v/0.m4s', 'v/1.m4s', 'v/2.m4s', 'v/3.m4s', '']
  )
  t.equal(p.segments[0]?.duration, 2)
  t.equal(p.segments[0]?.map.uri, 'v/init-0.mp4')
  t.same(
    p.segments.map((s) => s.programDateTime?.getTime()),
    [0, 1, 2, 3, 4].map((i) => T0 + i * 2000)
  )
  t.same(p.segments[0]?.parts, [], 'no parts far from the live edge')
  const partsOf = (i: number) => p.segments[i]?.parts.map((x) => `${x.uri}${x.hint ? ' hint' : ''}${x.independent ? ' independent' : ''}`)
  t.same(partsOf(3), ['v/3.0.m4s independent', 'v/3.1.m4s independent', 'v/3.2.m4s independent', 'v/3.3.m4s independent'])
  t.same(partsOf(4), [`v/${open}.0.m4s independent`, `v/${open}.1.m4s independent`, `v/${open}.2.m4s hint`])
  t.match(text, /^#EXT-X-PART:DURATION=0\.5,URI="v\/4\.0\.m4s",INDEPENDENT=YES$/m)
  t.match(text, /^#EXT-X-PRELOAD-HINT:TYPE=PART,URI="v\/4\.2\.m4s"$/m)
  t.match(text, /^#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1\.5,CAN-SKIP-UNTIL=12$/m)
  t.match(text, /^#EXT-X-INDEPENDENT-SEGMENTS$/m)
  t.match(text, /^#EXT-X-RENDITION-REPORT:URI="audio\.m3u8",LAST-MSN=4,LAST-PART=1$/m)
  t.same(
    p.segments.flatMap((s) => s.parts).filter((x) => !x.hint).map((x) => x.duration),
    Array(10).fill(0.5)
  )
})

t.test('parts are listed only within three target durations of the live edge', async (t) => {
  const w = fakeWindow({ keep: 10 })
  for (let i = 0; i < 8; i++) writeSegment(w)
  writeSegment(w, { complete: false, parts: 3 })
  const p = media(renderMediaPlaylist(w, 'video', false))
  const withParts = p.segments.filter((s) => s.parts.some((x) => !x.hint)).map((s) => s.mediaSequenceNumber)
  // Segment 6 ends 2 + 1.5 = 3.5 s before the edge, 7 ends 1.5 s before: within 3 x 2 s; 5 ends 5.5 s before but
  // starts 7.5 s before, and it would be a fourth segment with parts (hls-parser's reading of the rule).
  t.same(withParts, [6, 7, 8])
})

t.test('the preload hint names the next segment when the last one just closed', async (t) => {
  const w = fakeWindow()
  writeSegment(w)
  writeSegment(w)
  t.match(renderMediaPlaylist(w, 'video', false), /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="v\/2\.0\.m4s"\n/)
})

t.test('the target duration is the ceiling of the longest segment', async (t) => {
  const w = fakeWindow()
  writeSegment(w)
  writeSegment(w, { parts: 5, partDuration: 0.5 })
  const p = media(renderMediaPlaylist(w, 'video', false))
  t.equal(p.targetDuration, 3)
  t.equal(p.segments[1]?.duration, 2.5)
})

t.test('the media sequence and discontinuity sequence follow the window as it slides', async (t) => {
  const w = fakeWindow({ keep: 3 })
  writeSegment(w)
  writeSegment(w, { discontinuity: true })
  for (let i = 0; i < 4; i++) writeSegment(w)
  const text = renderMediaPlaylist(w, 'audio', false) as string
  const p = media(text)
  // Six segments written, three kept plus the newest.
  t.equal(p.mediaSequenceBase, 2)
  t.equal(p.discontinuitySequenceBase, 1, 'the discontinuity that slid out is counted')
  t.notMatch(text, /#EXT-X-DISCONTINUITY\n/)
  t.same(full(p).map((s) => s.mediaSequenceNumber), [2, 3, 4, 5])
})

t.test('a discontinuity with a new init version repeats EXT-X-MAP', async (t) => {
  const w = fakeWindow()
  writeSegment(w)
  writeSegment(w)
  w.track('video').setInit(1, { kind: 'video', codec: 'avc1.640028', timescale: 90_000, width: 1920, height: 1080 }, Buffer.from('video-init-1'))
  writeSegment(w, { discontinuity: true, initVersion: 1 })
  writeSegment(w, { initVersion: 1 })
  const text = renderMediaPlaylist(w, 'video', false) as string
  const p = media(text)
  t.same(full(p).map((s) => s.map?.uri), ['v/init-0.mp4', 'v/init-0.mp4', 'v/init-1.mp4', 'v/init-1.mp4'])
  t.same(full(p).map((s) => !!s.discontinuity), [false, false, true, false])
  t.same(full(p).map((s) => s.discontinuitySequence), [0, 0, 1, 1])
  t.equal(text.match(/#EXT-X-MAP/g)?.length, 2, 'one EXT-X-MAP per init change')
  t.match(text, /#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="v\/init-1\.mp4"\n#EXT-X-PROGRAM-DATE-TIME/)
  t.match(master(renderMultivariant(w)).variants[0]?.resolution, { width: 1920, height: 1080 }, 'the variant describes the current init')
})

t.test('an open segment after a discontinuity announces its map before its parts and hint', async (t) => {
  const w = fakeWindow()
  writeSegment(w)
  writeSegment(w, { discontinuity: true, complete: false, parts: 0 })
  const text = renderMediaPlaylist(w, 'video', false) as string
  t.match(text, /v\/0\.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="v\/init-0\.mp4"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI="v\/1\.0\.m4s"\n/)
  media(text)
})

t.test('an ended broadcast gets EXT-X-ENDLIST and no preload hint', async (t) => {
  const w = fakeWindow()
  writeSegment(w)
  writeSegment(w, { complete: false, parts: 2 })
  for (const track of w.tracks.values()) track.end()
  const text = renderMediaPlaylist(w, 'video', false) as string
  const p = media(text)
  t.equal(p.endlist, true)
  t.notMatch(text, /PRELOAD-HINT/)
  t.same(p.segments.map((s) => s.uri), ['v/0.m4s', 'v/1.m4s'])
  t.equal(p.segments[1]?.duration, 1)
})

t.test('a delta update skips the segments older than the skip boundary', async (t) => {
  const w = fakeWindow({ keep: 12 })
  for (let i = 0; i < 10; i++) writeSegment(w)
  writeSegment(w, { complete: false, parts: 1 })
  const full = media(renderMediaPlaylist(w, 'video', false))
  const deltaText = renderMediaPlaylist(w, 'video', true) as string
  const delta = media(deltaText)
  t.equal(full.segments.length, 11)
  // 20.5 s in the window; CAN-SKIP-UNTIL is 12 s: segments ending more than 12 s before the edge go (0..3).
  t.match(deltaText, /^#EXT-X-SKIP:SKIPPED-SEGMENTS=4$/m)
  t.equal(delta.skip, 4)
  t.equal(delta.mediaSequenceBase, 0, 'EXT-X-MEDIA-SEQUENCE is still the first segment of the full playlist')
  t.same(delta.segments.map((s) => s.mediaSequenceNumber), [4, 5, 6, 7, 8, 9, 10], 'the open segment last')
  t.equal(delta.segments[0]?.map.uri, 'v/init-0.mp4', 'the first segment after the skip still has its map')
  t.notMatch(renderMediaPlaylist(w, 'video', false), /EXT-X-SKIP/)
})

t.test('a delta update of a short window skips nothing', async (t) => {
  const w = fakeWindow()
  for (let i = 0; i < 4; i++) writeSegment(w)
  t.notMatch(renderMediaPlaylist(w, 'video', true), /EXT-X-SKIP/)
})

t.test('delivery directives: _HLS_part needs _HLS_msn, numbers only', async (t) => {
  t.same(parsePlaylistQuery(new URLSearchParams('')), { skip: false })
  t.same(parsePlaylistQuery(new URLSearchParams('_HLS_msn=5&_HLS_part=2&_HLS_skip=YES')), { skip: true, msn: 5, part: 2 })
  t.same(parsePlaylistQuery(new URLSearchParams('_HLS_skip=v2')), { skip: true })
  t.match(parsePlaylistQuery(new URLSearchParams('_HLS_part=1')), { error: /_HLS_msn/ })
  t.match(parsePlaylistQuery(new URLSearchParams('_HLS_msn=-1')), { error: /integer/ })
  t.match(parsePlaylistQuery(new URLSearchParams('_HLS_msn=1e3')), { error: /integer/ })
})

t.test('a blocking request more than two segments ahead of the playlist is refused', async (t) => {
  const w = fakeWindow()
  writeSegment(w)
  writeSegment(w)
  writeSegment(w, { complete: false, parts: 1 })
  const video = w.track('video')
  // The last complete segment is 1: up to 3 may be waited for.
  t.same(blockingTarget(video, query('_HLS_msn=3&_HLS_part=0')), { msn: 3, part: 0 })
  t.same(blockingTarget(video, query('_HLS_msn=2')), { msn: 2, part: Number.MAX_SAFE_INTEGER })
  t.match(blockingTarget(video, query('_HLS_msn=4')), { error: /two segments/ })
  t.equal(blockingTarget(video, query('_HLS_skip=YES')), null)
})

t.test('a held reload resolves when the awaited part is written, and times out otherwise', async (t) => {
  const w = fakeWindow()
  writeSegment(w)
  writeSegment(w, { complete: false, parts: 1 })
  const video = w.track('video')
  const target = blockingTarget(video, query('_HLS_msn=1&_HLS_part=1')) as { msn: number; part: number }
  let done = false
  const held = video.waitFor(target.msn, target.part, 5_000).then((ok) => ((done = true), ok))
  await new Promise((r) => setImmediate(r))
  t.equal(done, false, 'still held')
  addFakePart(video, 1)
  t.equal(await held, true)
  t.match(renderMediaPlaylist(w, 'video', false), /URI="v\/1\.1\.m4s",INDEPENDENT=YES/)
  t.equal(await video.waitFor(1, 5, 30), false, 'not written within the hold: false')
  const whole = blockingTarget(video, query('_HLS_msn=1')) as { msn: number; part: number }
  const segmentDone = video.waitFor(whole.msn, whole.part, 5_000)
  addFakePart(video, 1)
  video.closeSegment()
  t.equal(await segmentDone, true, 'a request without _HLS_part waits for the whole segment')
})

t.test('playlists are rendered once per window change and shared', async (t) => {
  const w = fakeWindow()
  writeSegment(w)
  writeSegment(w, { complete: false, parts: 1 })
  const playlists = new HlsPlaylists()
  const a = playlists.media(w, 'video', false)
  t.equal(playlists.media(w, 'video', false), a, 'the same buffer while nothing changed')
  t.not(playlists.media(w, 'video', true), null)
  addFakePart(w.track('video'), 1)
  const b = playlists.media(w, 'video', false)
  t.not(b, a, 'a new part: a new rendering')
  t.match(b?.toString(), /v\/1\.1\.m4s/)
  t.equal(playlists.multivariant(w), playlists.multivariant(w))
})
