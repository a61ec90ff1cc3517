import t from 'tap'
import { ApiUser } from '../src/api-client.js'
import { launchBrowser, type Player } from '../src/browser.js'
import { publishClock } from '../src/ffmpeg.js'
import { createStackEnv, startApi, startIngest } from '../src/stack.js'
import { waitFor } from '../src/wait.js'

// Real players against the real stack: one publisher with a burned-in clock, hls.js and dash.js in headless Chromium.
// Only the entry URLs (playback_url, dash_url) are assumed; whatever the playlists link to is the players' business.
// Latencies are logged, never asserted: bench/latency.mjs measures them.
const WIDTH = 640
const stack = await createStackEnv('players')
const api = await startApi(stack)
const ingest = await startIngest(stack)
const browser = await launchBrowser()
const owner = await ApiUser.register(api.url, 'players')
const stream = await owner.createStream('players')
// Long enough for both players in turn; stopped at the end.
const publisher = publishClock(ingest.rtmpUrl(stream.stream_key), { seconds: 300, size: `${WIDTH}x360`, gopFrames: 25 })

t.teardown(async () => {
  await browser.close()
  await publisher.stop()
  await ingest.stop()
  await api.stop()
  await stack.cleanup()
})

const live = await waitFor('stream live in the api', async () => {
  const s = await owner.stream(stream.id)
  return s.status === 'live' ? s : null
})
// A player opened before its entry URL exists gives up on a 404; once it answers, the rest is the player's job.
for (const url of [live.playback_url, live.dash_url]) {
  await waitFor(`${url} answered`, async () => (await fetch(url)).ok, 30_000, 100)
}

async function latencyLine(name: string, player: Player): Promise<string> {
  // A few seconds of readings after the start, so the figure is not the start-up transient alone.
  await new Promise((r) => setTimeout(r, 3000))
  const { playerMs, clockMs } = await player.latency()
  const stats = await player.clockStats()
  const ms = (v: number | null) => (v === null ? 'n/a' : `${Math.round(v)} ms`)
  return `${name}: player latency ${ms(playerMs)}, clock (glass-to-glass) ${ms(clockMs)}; clock frames read ${stats.read} (${stats.timer} by the fallback timer), unreadable ${stats.unreadable}`
}

t.test('hls.js in low-latency mode plays the live stream: 3 s of playback with no fatal error', async (t) => {
  const player = await browser.openPlayer({ kind: 'hls', url: live.playback_url, lowLatency: true, clockWidth: WIDTH })
  t.teardown(() => player.close())
  await player.waitForAdvance(3, 60_000)
  t.same(await player.errors(), [], 'no fatal player error')
  t.comment(await latencyLine('hls.js', player))
  t.same(await player.errors(), [], 'still no fatal player error')
})

t.test('dash.js with low-latency settings plays the live stream: 3 s of playback with no fatal error', async (t) => {
  const player = await browser.openPlayer({ kind: 'dash', url: live.dash_url, lowLatency: true, clockWidth: WIDTH })
  t.teardown(() => player.close())
  await player.waitForAdvance(3, 60_000)
  t.same(await player.errors(), [], 'no fatal player error')
  t.comment(await latencyLine('dash.js', player))
  t.same(await player.errors(), [], 'still no fatal player error')
})
