import t, { type Test } from 'tap'
import { ApiUser, type StreamView } from '../src/api-client.js'
import { launchBrowser, type Player, type PlayerKind } from '../src/browser.js'
import { probeCmafVideo, publishClock, type ClockPublisher, type ClockSourceOptions } from '../src/ffmpeg.js'
import { hlsCmafSegments, hlsMediaPlaylists } from '../src/manifests.js'
import { createStackEnv, startApi, startIngest } from '../src/stack.js'
import { waitFor } from '../src/wait.js'

// The publishes a live encoder may send that are not plain 1 s-GOP audio + video: video only, audio only, B-frames,
// OBS's default 250-frame GOP. Each plays in real players (hls.js in low-latency mode, dash.js) in headless Chromium
// for 3 s of media with no fatal error, and the playlists or the bytes show why. Figures are logged, never asserted.
const stack = await createStackEnv('edge_players')
const api = await startApi(stack)
const ingest = await startIngest(stack)
const browser = await launchBrowser()
const owner = await ApiUser.register(api.url, 'edge-players')

t.teardown(async () => {
  await browser.close()
  await ingest.stop()
  await api.stop()
  await stack.cleanup()
})

const text = async (url: string): Promise<string> => {
  const res = await fetch(url)
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`)
  return res.text()
}

/** A new stream published by a clock publisher until the test ends; resolves once the api says live and both entry URLs answer. */
async function goLive(t: Test, title: string, opts: ClockSourceOptions): Promise<{ live: StreamView; publisher: ClockPublisher }> {
  const stream = await owner.createStream(title)
  const publisher = publishClock(ingest.rtmpUrl(stream.stream_key), opts, title)
  t.teardown(() => publisher.stop())
  const live = await waitFor(`${title} live in the api`, async () => {
    if (publisher.child.exitCode !== null) throw new Error(`publisher exited:\n${publisher.output()}`)
    const s = await owner.stream(stream.id)
    return s.status === 'live' ? s : null
  }, 30_000)
  for (const url of [live.playback_url, live.dash_url]) await waitFor(`${url} answered`, async () => (await fetch(url)).ok, 30_000, 100)
  return { live, publisher }
}

/** Opens a player and waits for 3 s of media played with no fatal error; the page closes with the test. */
async function plays(t: Test, kind: PlayerKind, url: string, clockWidth?: number): Promise<Player> {
  const started = Date.now()
  const player = await browser.openPlayer({ kind, url, lowLatency: true, ...(clockWidth ? { clockWidth } : {}) })
  t.teardown(() => player.close())
  await player.waitForAdvance(3, 60_000)
  t.same(await player.errors(), [], `${kind}: 3 s played with no fatal error`)
  t.comment(`${kind}: 3 s of media played ${((Date.now() - started) / 1000).toFixed(1)} s after opening the page`)
  return player
}

async function latencyLine(name: string, player: Player): Promise<string> {
  const { playerMs, clockMs } = await player.latency()
  const stats = await player.clockStats()
  const ms = (v: number | null) => (v === null ? 'n/a' : `${Math.round(v)} ms`)
  return `${name}: player latency ${ms(playerMs)}, clock (glass-to-glass) ${ms(clockMs)}; clock frames read ${stats.read}, unreadable ${stats.unreadable}`
}

t.test('a video-only publish (-an) plays in hls.js and dash.js, and the multivariant playlist has no audio rendition', async (t) => {
  const { live } = await goLive(t, 'video-only', { seconds: 120, audio: false, size: '320x180' })
  const multivariant = await text(live.playback_url)
  t.notMatch(multivariant, /TYPE=AUDIO/, 'no EXT-X-MEDIA audio rendition')
  t.match(multivariant, /CODECS="avc1\.[0-9a-f]{6}"/, 'the variant names the video codec alone')
  t.notOk(hlsMediaPlaylists(multivariant, live.playback_url).audio, 'no audio playlist')
  t.notMatch(await text(live.dash_url), /contentType="audio"/, 'the MPD has no audio AdaptationSet')
  await plays(t, 'hls', live.playback_url)
  await plays(t, 'dash', live.dash_url)
})

t.test('an audio-only publish (-vn) plays in hls.js and dash.js; its only variant is the audio playlist', async (t) => {
  const { live } = await goLive(t, 'audio-only', { seconds: 120, video: false })
  const multivariant = await text(live.playback_url)
  t.match(multivariant, /#EXT-X-STREAM-INF:[^\n]*CODECS="mp4a\.40\.\d+"\naudio\.m3u8/, 'one variant: the audio playlist, AAC')
  t.notMatch(multivariant, /RESOLUTION=|avc1/, 'nothing about video')
  t.notMatch(await text(live.dash_url), /contentType="video"/, 'the MPD has no video AdaptationSet')
  await plays(t, 'hls', live.playback_url)
  await plays(t, 'dash', live.dash_url)
})

t.test('B-frames (-bf 2) play in hls.js and dash.js, and the served segment keeps pts and dts apart as encoded', async (t) => {
  const { live } = await goLive(t, 'bframes', { seconds: 120, bframes: 2, size: '320x180' })
  const videoUrl = hlsMediaPlaylists(await text(live.playback_url), live.playback_url).video as string
  const { init, segments } = await waitFor('a complete video segment', async () => {
    const s = hlsCmafSegments(await text(videoUrl), videoUrl)
    return s.segments.length > 0 ? s : null
  }, 20_000, 200)
  const { packets } = await probeCmafVideo(init, segments.at(-1) as string)
  t.ok(packets.length > 10, `ffprobe reads the segment (${packets.length} packets)`)
  t.ok(packets.every((p, i) => i === 0 || p.dts > (packets[i - 1] as { dts: number }).dts), 'dts strictly increase')
  t.ok(packets.every((p) => p.pts >= p.dts), 'no frame is shown before it is decoded')
  t.ok(packets.some((p) => p.pts > p.dts), 'composition offsets are kept (pts > dts on reordered frames)')
  t.ok(packets.some((p, i) => i > 0 && p.pts < (packets[i - 1] as { pts: number }).pts), 'decode order differs from presentation order (B-frames)')
  await plays(t, 'hls', live.playback_url)
  await plays(t, 'dash', live.dash_url)
})

t.test('a 250-frame GOP (OBS default: 10 s at 25 fps) plays in hls.js and dash.js; segments run from keyframe to keyframe', async (t) => {
  const width = 640
  const { live } = await goLive(t, 'gop250', { seconds: 180, gopFrames: 250, size: `${width}x360` })
  const hls = await plays(t, 'hls', live.playback_url, width)
  t.comment(await latencyLine('hls.js, 250-frame GOP, just after the start', hls))
  await hls.waitForAdvance(8, 30_000)
  t.comment(await latencyLine('hls.js, 250-frame GOP, after 11 s of play', hls))
  await hls.close()
  const videoUrl = hlsMediaPlaylists(await text(live.playback_url), live.playback_url).video as string
  const playlist = await text(videoUrl)
  const extinf = [...playlist.matchAll(/#EXTINF:([\d.]+),/g)].map((m) => Number(m[1]))
  t.ok(extinf.length > 0 && extinf.every((d) => d > 9.5 && d < 10.5), `complete segments last one GOP: ${extinf.join(', ')} s`)
  t.match(playlist, /#EXT-X-TARGETDURATION:10\n/, 'the target duration follows the GOP')
  const parts = [...playlist.matchAll(/#EXT-X-PART:DURATION=([\d.]+),/g)].map((m) => Number(m[1]))
  t.ok(parts.length > 10 && parts.every((d) => d < 0.5), `parts stay short (${parts.length} listed, longest ${Math.max(...parts)} s)`)
  const dash = await plays(t, 'dash', live.dash_url, width)
  t.comment(await latencyLine('dash.js, 250-frame GOP, just after the start', dash))
})
