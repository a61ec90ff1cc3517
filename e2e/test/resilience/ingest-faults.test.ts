import t from 'tap'
import { readdir } from 'node:fs/promises'
import path from 'node:path'
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

const segmentsIn = async (dir: string) => (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.ts'))
const mediaSeq = async (url: string) => {
  const res = await fetch(url)
  if (!res.ok) return -1
  const m = /#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(await res.text())
  return m ? Number(m[1]) : -1
}

t.test('ffmpeg killed under a live publish: packaging restarts and the playlist keeps growing', async (t) => {
  const ingest = await startIngest(stack)
  t.teardown(() => ingest.stop())
  const s = await owner.createStream('packager crash')
  const publisher = publishTestClip(ingest.rtmpUrl(s.stream_key), 30, 'steady')
  t.teardown(() => publisher.stop())
  const live = await waitFor('live', async () => {
    const v = await owner.stream(s.id)
    return v.status === 'live' ? v : null
  })
  const hlsDir = path.join(stack.mediaRoot, 'hls', live.playback_id)
  await waitFor('two segments', async () => (await segmentsIn(hlsDir)).length >= 2)
  const [ffmpegPid] = await childrenNamed(ingest.child.pid as number, 'ffmpeg')
  t.ok(ffmpegPid, 'the packager ffmpeg is a child of ingest')
  const before = await mediaSeq(live.playback_url)
  const newestBefore = (await segmentsIn(hlsDir)).sort().at(-1)
  process.kill(ffmpegPid as number, 'SIGKILL')
  const replacement = await waitFor('a new packager', async () => {
    const pids = await childrenNamed(ingest.child.pid as number, 'ffmpeg')
    return pids.find((p) => p !== ffmpegPid)
  })
  t.ok(replacement, 'a new ffmpeg runs')
  await waitFor('new segments after the crash', async () => {
    const newest = (await segmentsIn(hlsDir)).sort().at(-1)
    return newest !== undefined && newest > (newestBefore as string) ? newest : null
  }, 20_000)
  const after = await waitFor('the playlist moves on', async () => {
    const seq = await mediaSeq(live.playback_url)
    return seq > before ? seq : null
  }, 20_000)
  t.ok(after > before, `media sequence ${before} -> ${after}`)
  t.equal((await owner.stream(s.id)).status, 'live', 'the stream never left live')
  const metrics = await (await fetch(`${ingest.publicUrl}/metrics`)).text()
  t.match(metrics, /livestream_ingest_ffmpeg_restarts_total\{[^}]*\} [1-9]/)
})

t.test('rotating the key disconnects the publisher still using the old one and refuses it afterwards', async (t) => {
  const ingest = await startIngest(stack)
  t.teardown(() => ingest.stop())
  const s = await owner.createStream('rotate under load')
  const publisher = publishTestClip(ingest.rtmpUrl(s.stream_key), 30, 'old-key')
  t.teardown(() => publisher.stop())
  await waitFor('live', async () => (await owner.stream(s.id)).status === 'live')
  const { status } = await owner.call('POST', `/livestream/streams/${s.id}/key/rotate`)
  t.equal(status, 200)
  const exit = await Promise.race([publisher.exited, new Promise<null>((r) => setTimeout(() => r(null), 15_000))])
  t.ok(exit, 'the old-key publisher was disconnected')
  const again = publishTestClip(ingest.rtmpUrl(s.stream_key), 3, 'old-key-again')
  const second = await again.exited
  t.not(second.code, 0, 'the old key is refused')
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

t.test('ingest killed with 10 live streams: the reaper ends them, a restart does not resurrect them, media is cleaned', async (t) => {
  const nodeId = 'crash-node'
  const ingest = await startIngest(stack, { INGEST_NODE_ID: nodeId })
  const streams = await Promise.all(Array.from({ length: 10 }, (_, i) => owner.createStream(`crash ${i}`)))
  const publishers = await Promise.all(streams.map((s, i) => publishClipLoop(ingest.rtmpUrl(s.stream_key), 40, `p${i}`)))
  t.teardown(() => Promise.all(publishers.map((p) => p.stop())))
  await waitFor('all live', async () => (await Promise.all(streams.map((s) => owner.stream(s.id)))).every((v) => v.status === 'live'), 30_000)
  await waitFor('media written', async () => (await readdir(path.join(stack.mediaRoot, 'hls'))).length >= 10)

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
  t.same(await readdir(path.join(stack.mediaRoot, 'hls')), [], 'leftover HLS folders removed at start')
  t.same(await readdir(path.join(stack.mediaRoot, 'dash')), [], 'leftover DASH folders removed at start')
  await new Promise((r) => setTimeout(r, 1_500))
  const views = await Promise.all(streams.map((s) => owner.stream(s.id)))
  t.ok(views.every((v) => v.status === 'ended'), 'nothing resurrected')
  const [published] = await sql.query("SELECT COUNT(*) n FROM stream_events WHERE type = 'stream.published'")
  t.equal((published as Array<{ n: number }>)[0]!.n >= 10, true)
})

t.test('ingest killed and never restarted: another node on the same MEDIA_ROOT sweeps its media after the orphan time', async (t) => {
  const ORPHAN_MS = 3_000
  const survivor = await startIngest(stack, { INGEST_NODE_ID: 'survivor', MEDIA_ORPHAN_MS: String(ORPHAN_MS) })
  t.teardown(() => survivor.stop())
  const doomed = await startIngest(stack, { INGEST_NODE_ID: 'doomed' })
  const s = await owner.createStream('never coming back')
  const publisher = await publishClipLoop(doomed.rtmpUrl(s.stream_key), 40, 'doomed-publisher')
  t.teardown(() => publisher.stop())
  const live = await waitFor('live', async () => {
    const v = await owner.stream(s.id)
    return v.status === 'live' ? v : null
  })
  const folders = ['hls', 'dash'].map((kind) => path.join(stack.mediaRoot, kind, live.playback_id))
  await waitFor('segments written', async () => (await segmentsIn(folders[0]!)).length >= 2)
  await new Promise((r) => setTimeout(r, ORPHAN_MS * 1.5))
  t.ok((await readdir(folders[0]!)).length > 0, 'while its node lives and writes, the survivor leaves its media alone')

  await doomed.stop('SIGKILL')
  await publisher.stop()
  const killedAt = Date.now()
  await waitFor('the dead node’s folders removed', async () => {
    const left = await Promise.all(folders.map((f) => readdir(f).then(() => true, () => false)))
    return left.every((exists) => !exists)
  }, 30_000)
  const sweptMs = Date.now() - killedAt
  t.comment(`swept ${sweptMs} ms after the kill (MEDIA_ORPHAN_MS=${ORPHAN_MS})`)
  // Its last heartbeat and segment came up to half a second before the kill; a sweep ignoring them would strike
  // within one sweep interval (a quarter of the orphan time).
  t.ok(sweptMs >= ORPHAN_MS - 1_000, `not before its heartbeat and writes were ${ORPHAN_MS} ms old (${sweptMs} ms)`)
  t.ok(await waitFor('the sweep log line', async () => /media folders of nodes gone for good removed/.test(survivor.output())), 'the survivor said so')
})
