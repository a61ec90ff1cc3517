import t from 'tap'
import mysql from 'mysql2/promise'
import { ApiUser } from '../../src/api-client.js'
import { publishClipLoop, publishTestClip } from '../../src/ffmpeg.js'
import { childrenNamed } from '../../src/proc.js'
import { createStackEnv, startApi, startIngest } from '../../src/stack.js'
import { waitFor } from '../../src/wait.js'

// The reaper's settings, given to the api below and used by the bound on how fast it ends a dead node's streams.
const NODE_TIMEOUT_MS = 3_000
const REAPER_INTERVAL_MS = 500
/** Room for the reaper's own round (ten transitions) and for our polling of the api. */
const REAP_MARGIN_MS = 2_000

const stack = await createStackEnv('faults')
const api = await startApi(stack, { NODE_TIMEOUT_MS: String(NODE_TIMEOUT_MS), REAPER_INTERVAL_MS: String(REAPER_INTERVAL_MS) })
const owner = await ApiUser.register(api.url, 'faulty')
const sql = await mysql.createConnection({ uri: stack.db.url, timezone: 'Z' })
t.teardown(async () => {
  await api.stop()
  await sql.end()
  await stack.cleanup()
})

/** The video media playlist next to a multivariant playlist (ingest's URL scheme). */
const videoPlaylist = (playbackUrl: string) => playbackUrl.replace(/index\.m3u8$/, 'video.m3u8')
const mediaSeq = async (url: string) => {
  const res = await fetch(url)
  if (!res.ok) return -1
  const m = /#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(await res.text())
  return m ? Number(m[1]) : -1
}

t.test('a plain publish spawns no ffmpeg: ingest starts and packages with none on its PATH', async (t) => {
  // FFMPEG_PATH points nowhere and PATH holds no ffmpeg: any attempt to run one would fail the publish.
  const ingest = await startIngest(stack, { PATH: '/nonexistent', FFMPEG_PATH: '/nonexistent/ffmpeg' })
  t.teardown(() => ingest.stop())
  const s = await owner.createStream('no ffmpeg')
  const publisher = publishTestClip(ingest.rtmpUrl(s.stream_key), 30, 'plain')
  t.teardown(() => publisher.stop())
  const live = await waitFor('live', async () => {
    const v = await owner.stream(s.id)
    return v.status === 'live' ? v : null
  })
  const before = await waitFor('a segment', async () => ((await mediaSeq(videoPlaylist(live.playback_url))) >= 0 ? true : null))
  t.ok(before, 'the video playlist is served')
  let children = 0
  const deadline = Date.now() + 3_000
  while (Date.now() < deadline) {
    children += (await childrenNamed(ingest.child.pid as number, 'ffmpeg')).length
    await new Promise((r) => setTimeout(r, 100))
  }
  t.equal(children, 0, 'no ffmpeg child of ingest at any sample over 3 s of a live publish')
  const metrics = await (await fetch(`${ingest.publicUrl}/metrics`)).text()
  t.match(metrics, /livestream_ingest_media_window_bytes\{[^}]*\} [1-9]/, 'the live window holds media in memory')
})

t.test('rotating the key of a live stream cuts the publisher on the old key and refuses that key, but the stream stays live for a publish with the new one; with none, it ends key-rotated after the window', async (t) => {
  const WINDOW_MS = 6_000
  const ingest = await startIngest(stack, { RECONNECT_WINDOW_MS: String(WINDOW_MS) })
  t.teardown(() => ingest.stop())
  const s = await owner.createStream('rotate under load')
  const publisher = publishTestClip(ingest.rtmpUrl(s.stream_key), 60, 'old-key')
  t.teardown(() => publisher.stop())
  await waitFor('live', async () => (await owner.stream(s.id)).status === 'live')
  const playlist = `${ingest.publicUrl}/hls/${s.playback_id}/video.m3u8`
  await waitFor('a segment', async () => ((await mediaSeq(playlist)) >= 0 ? true : null))

  // Watch the api from the rotation on: the stream must never be seen ended while the owner comes back.
  const seen = new Set<string>()
  let watching = true
  const watcher = (async () => {
    while (watching) {
      seen.add((await owner.stream(s.id)).status)
      await new Promise((r) => setTimeout(r, 100))
    }
  })()
  const rotated = await owner.call<{ stream_key: string }>('POST', `/livestream/streams/${s.id}/key/rotate`)
  t.equal(rotated.status, 200)
  const newKey = rotated.body.data.stream_key
  t.not(newKey, s.stream_key)
  const exit = await Promise.race([publisher.exited, new Promise<null>((r) => setTimeout(() => r(null), 15_000))])
  t.ok(exit, 'the old-key publisher was disconnected')
  const cutAt = Date.now()

  const comeback = publishTestClip(ingest.rtmpUrl(newKey), 60, 'new-key')
  t.teardown(() => comeback.stop())
  const again = publishTestClip(ingest.rtmpUrl(s.stream_key), 3, 'old-key-again')
  t.not((await again.exited).code, 0, 'the old key is refused')
  await waitFor('a discontinuity: the same playlist continues with the new publish', async () => {
    const res = await fetch(playlist)
    return res.ok && (await res.text()).includes('#EXT-X-DISCONTINUITY')
  }, 20_000)
  t.ok(Date.now() - cutAt < WINDOW_MS + 5_000, 'resumed well within reach of the window')
  await new Promise((r) => setTimeout(r, WINDOW_MS)) // past the window: the resumed stream must not end
  watching = false
  await watcher
  t.same([...seen], ['live'], 'the api saw the stream live throughout: never ended in between')
  // Lifecycle events only: reading the playlist made this test a viewer, reported as `stream.viewers`.
  const [events] = await sql.query("SELECT type FROM stream_events WHERE stream_id = ? AND type <> 'stream.viewers' ORDER BY id", [s.id])
  t.same((events as Array<{ type: string }>).map((e) => e.type), ['stream.published', 'stream.reconnecting', 'stream.resumed'], 'the ledger: one publish, the cut and the return, no unpublish')
  t.equal(comeback.child.exitCode, null, 'the new-key publisher is still on')

  // Rotated again and nobody comes back: the publisher is cut, the stream waits out the window, then ends key-rotated.
  const second = await owner.call('POST', `/livestream/streams/${s.id}/key/rotate`)
  t.equal(second.status, 200)
  await Promise.race([comeback.exited, new Promise((r) => setTimeout(r, 15_000))])
  const cut2 = Date.now()
  t.equal((await owner.stream(s.id)).status, 'live', 'still live just after the cut')
  const ended = await waitFor('ended after the window', async () => {
    const v = await owner.stream(s.id)
    return v.status === 'ended' ? v : null
  }, WINDOW_MS + 15_000, 200)
  const waited = Date.now() - cut2
  t.ok(waited >= WINDOW_MS - 1_000, `ended ${waited} ms after the cut: not before the window (${WINDOW_MS} ms)`)
  t.equal(ended.ended_reason, 'key-rotated')
  const refused = publishTestClip(ingest.rtmpUrl(rotated.body.data.stream_key), 3, 'after-end')
  t.not((await refused.exited).code, 0, 'once ended, no key publishes: ended is final')
})

t.test('SIGTERM on ingest ends its streams with node-shutdown and exits cleanly', async (t) => {
  const ingest = await startIngest(stack)
  const s = await owner.createStream('graceful')
  const publisher = publishTestClip(ingest.rtmpUrl(s.stream_key), 30, 'graceful')
  t.teardown(() => publisher.stop())
  await waitFor('live', async () => (await owner.stream(s.id)).status === 'live')
  const exit = await ingest.stop('SIGTERM')
  t.equal(exit.code, 0, 'exit code 0')
  const ended = await waitFor('ended', async () => {
    const v = await owner.stream(s.id)
    return v.status === 'ended' ? v : null
  })
  t.equal(ended.ended_reason, 'node-shutdown', 'the unpublish event went out before exit')
  t.notMatch(ingest.output(), s.stream_key, 'the key never reached the log')
})

t.test('ingest killed with 10 live streams: the reaper ends them, a restart neither resurrects nor serves them', async (t) => {
  const nodeId = 'crash-node'
  const ingest = await startIngest(stack, { INGEST_NODE_ID: nodeId })
  const streams = await Promise.all(Array.from({ length: 10 }, (_, i) => owner.createStream(`crash ${i}`)))
  const publishers = await Promise.all(streams.map((s, i) => publishClipLoop(ingest.rtmpUrl(s.stream_key), 40, `p${i}`)))
  t.teardown(() => Promise.all(publishers.map((p) => p.stop())))
  await waitFor('all live', async () => (await Promise.all(streams.map((s) => owner.stream(s.id)))).every((v) => v.status === 'live'), 30_000)
  const views0 = await Promise.all(streams.map((s) => owner.stream(s.id)))
  await waitFor('all served', async () => (await Promise.all(views0.map((v) => fetch(v.playback_url).then((r) => r.ok, () => false)))).every(Boolean))

  await ingest.stop('SIGKILL')
  const killedAt = Date.now()
  const reaped = await waitFor('all reaped', async () => {
    const views = await Promise.all(streams.map((s) => owner.stream(s.id)))
    return views.every((v) => v.status === 'ended') ? views : null
  }, 30_000)
  const reapedMs = Date.now() - killedAt
  const bound = NODE_TIMEOUT_MS + REAPER_INTERVAL_MS + REAP_MARGIN_MS
  t.comment(`reaped 10 streams ${reapedMs} ms after the kill (NODE_TIMEOUT_MS=${NODE_TIMEOUT_MS}, REAPER_INTERVAL_MS=${REAPER_INTERVAL_MS})`)
  t.ok(reapedMs <= bound, `the reaper ended them within the configured time: ${reapedMs} ms <= ${bound} ms`)
  t.same(reaped.map((v) => v.ended_reason), Array(10).fill('node-lost'), 'the api answers node-lost for each')
  const [rows] = await sql.query('SELECT ended_reason, ended_at FROM streams WHERE id IN (?)', [streams.map((s) => s.id)])
  const ended = rows as Array<{ ended_reason: string | null; ended_at: Date | null }>
  t.same(ended.map((r) => r.ended_reason), Array(10).fill('node-lost'), 'the database records node-lost for each')
  t.ok(
    ended.every((r) => r.ended_at !== null && r.ended_at.getTime() - killedAt <= bound),
    `each ended_at is within ${bound} ms of the kill (${ended.map((r) => (r.ended_at ? r.ended_at.getTime() - killedAt : 'null')).join(',')})`
  )

  const restarted = await startIngest(stack, { INGEST_NODE_ID: nodeId, RTMP_PORT: String(ingest.rtmpPort), HTTP_PORT: String(ingest.httpPort) })
  t.teardown(() => restarted.stop())
  const statuses = await Promise.all(views0.map((v) => fetch(v.playback_url).then((r) => r.status)))
  t.same(statuses, Array(10).fill(404), 'the restarted node serves none of them: media lived in the dead process')
  await new Promise((r) => setTimeout(r, 1_500))
  const views = await Promise.all(streams.map((s) => owner.stream(s.id)))
  t.ok(views.every((v) => v.status === 'ended'), 'nothing resurrected')
  const [published] = await sql.query("SELECT COUNT(*) n FROM stream_events WHERE type = 'stream.published'")
  t.equal((published as Array<{ n: number }>)[0]!.n >= 10, true)
})
