import { randomBytes } from 'node:crypto'
import mysql from 'mysql2/promise'
import t from 'tap'
import { ApiUser, type StreamView } from '../../src/api-client.js'
import { ReadyBalancer } from '../../src/balancer.js'
import { launchBrowser } from '../../src/browser.js'
import { publishTestClip } from '../../src/ffmpeg.js'
import { freePort } from '../../src/ports.js'
import { ReconnectingPublisher } from '../../src/reconnecting-publisher.js'
import { createStackEnv, startApi, startIngest } from '../../src/stack.js'
import { waitFor } from '../../src/wait.js'

// Scaling in without ending a stream. Two real ingest nodes behind TCP load balancers (RTMP and media HTTP) that
// send new connections only to ready nodes; five publishers that reconnect when cut, as OBS does. Node A holds all
// five streams and is drained by an operator's call: its publishers are cut one at a time over DRAIN_SECONDS, land
// on node B through the balancer, and the streams go on there, live throughout, on the same playlists; A exits once
// it holds nothing. A player on the one playback URL (the balancer, through the api's PLAYBACK_BASE_URL) and one on
// node B's own URL (proxied to A until the move) keep playing (hls.js; dash.js does not follow the move yet: see the
// README's Operators section).
const DRAIN_SECONDS = 5
const RECONNECT_WINDOW_MS = 10_000
const STREAMS = 5
const OPERATOR_TOKEN = randomBytes(32).toString('base64')

const stack = await createStackEnv('drain')
const [httpA, httpB, rtmpA, rtmpB] = [stack.playbackPort, await freePort(), await freePort(), await freePort()]
const nodeEnv = { DRAIN_SECONDS: String(DRAIN_SECONDS), RECONNECT_WINDOW_MS: String(RECONNECT_WINDOW_MS), OPERATOR_TOKEN }
const nodeA = await startIngest(stack, { ...nodeEnv, INGEST_NODE_ID: 'node-a', HTTP_PORT: String(httpA), RTMP_PORT: String(rtmpA) })
const nodeB = await startIngest(stack, { ...nodeEnv, INGEST_NODE_ID: 'node-b', HTTP_PORT: String(httpB), RTMP_PORT: String(rtmpB) })
// A first: every connection goes to A while it is ready, then to B.
const rtmpLb = new ReadyBalancer([
  { name: 'a', port: rtmpA, readyUrl: `${nodeA.publicUrl}/readyz` },
  { name: 'b', port: rtmpB, readyUrl: `${nodeB.publicUrl}/readyz` }
])
const httpLb = new ReadyBalancer([
  { name: 'a', port: httpA, readyUrl: `${nodeA.publicUrl}/readyz` },
  { name: 'b', port: httpB, readyUrl: `${nodeB.publicUrl}/readyz` }
])
await rtmpLb.start()
await httpLb.start()
const playbackBase = `http://127.0.0.1:${httpLb.port}`
const api = await startApi(stack, { PLAYBACK_BASE_URL: playbackBase, NODE_TIMEOUT_MS: '3000' })
const browser = await launchBrowser()
const sql = await mysql.createConnection({ uri: stack.db.url })
const owner = await ApiUser.register(api.url, 'drain')
const publishers: ReconnectingPublisher[] = []

t.teardown(async () => {
  await browser.close()
  for (const p of publishers) await p.stop()
  await nodeB.stop()
  await nodeA.stop()
  await api.stop()
  await rtmpLb.stop()
  await httpLb.stop()
  await sql.end()
  await stack.cleanup()
})

const text = async (url: string, init?: RequestInit): Promise<string> => {
  const res = await fetch(url, init)
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`)
  return res.text()
}
const msns = (playlist: string): number[] => [...playlist.matchAll(/[va]\/(\d+)(?:\.\d+)?\.m4s/g)].map((m) => Number(m[1]))
const drainCall = (headers: Record<string, string> = {}) => fetch(`${nodeA.publicUrl}/admin/drain`, { method: 'POST', headers })

t.test('draining a node with 5 live streams ends none of them: they move to the other node on the same playlists, and players keep playing', async (t) => {
  const streams = await Promise.all(Array.from({ length: STREAMS }, (_, i) => owner.createStream(`drained ${i}`)))
  for (const s of streams) {
    const p = new ReconnectingPublisher(`rtmp://127.0.0.1:${rtmpLb.port}/live/${s.stream_key}`, `publisher-${s.id}`)
    publishers.push(p)
    await p.start()
  }
  const live: StreamView[] = await waitFor('all five live on node A', async () => {
    const views = await Promise.all(streams.map((s) => owner.stream(s.id)))
    return views.every((v) => v.status === 'live' && v.ingest_node_id === 'node-a') ? views : null
  }, 60_000, 250)
  t.ok(live.every((v) => v.playback_url === `${playbackBase}/hls/${v.playback_id}/index.m3u8`), 'playback URLs are built on PLAYBACK_BASE_URL and name no node')
  for (const v of live) await waitFor(`${v.playback_id} served`, async () => (await fetch(v.playback_url)).ok, 30_000, 100)

  // Any node answers any playback id: B has none of them yet, and proxies to A.
  const [first, second] = live as [StreamView, StreamView]
  const viaB = (v: StreamView, file: string) => `${nodeB.publicUrl}/hls/${v.playback_id}/${file}`
  t.match(await text(viaB(first, 'index.m3u8')), /^#EXTM3U/, 'node B answers a playback id held by node A')
  const onA = await text(`${nodeA.publicUrl}/hls/${first.playback_id}/video.m3u8`)
  const next = Math.max(...msns(onA)) + 1
  const held = await text(`${viaB(first, 'video.m3u8')}?_HLS_msn=${next}&_HLS_part=0`)
  t.ok(msns(held).includes(next), 'a blocking playlist reload passes through the proxy and is held until its part exists')
  const unknown = await fetch(`${nodeB.publicUrl}/hls/nosuchplaybackid/index.m3u8`)
  t.equal(unknown.status, 404, 'an unknown playback id: 404')
  t.match(await unknown.json(), { success: false }, 'in the envelope')
  const hop = await fetch(viaB(first, 'index.m3u8'), { headers: { 'x-livestream-proxied-by': 'node-x' } })
  t.equal(hop.status, 404, 'a request already proxied once is never proxied again (no loops)')

  const hls = await browser.openPlayer({ kind: 'hls', url: first.playback_url, lowLatency: true })
  const viaNodeB = await browser.openPlayer({ kind: 'hls', url: viaB(second, 'index.m3u8'), lowLatency: true })
  t.teardown(() => hls.close())
  t.teardown(() => viaNodeB.close())
  await hls.waitForAdvance(3, 60_000)
  await viaNodeB.waitForAdvance(3, 60_000)
  t.comment(`players started; node A's video playlist of stream ${first.id} ends at msn ${next - 1}`)

  // Operators only.
  const anonymous = await drainCall()
  t.equal(anonymous.status, 401, 'no credentials: 401')
  t.match(await anonymous.json(), { success: false, data: null }, 'in the envelope')
  const wrong = await drainCall({ authorization: `Bearer ${randomBytes(32).toString('base64')}` })
  t.equal(wrong.status, 401, 'a wrong token: 401')
  t.equal((await fetch(`${nodeA.publicUrl}/readyz`)).status, 200, 'refused calls drain nothing')

  const drainedAt = Date.now()
  const accepted = await drainCall({ authorization: `Bearer ${OPERATOR_TOKEN}` })
  t.equal(accepted.status, 202, 'the operator token: 202')
  t.match(await accepted.json(), { success: true, data: { draining: true, toDisconnect: STREAMS } })
  const again = await drainCall({ authorization: `Bearer ${OPERATOR_TOKEN}` })
  t.equal(again.status, 200, 'asked twice: idempotent')
  t.match(await again.json(), { success: true, message: 'already draining' })
  const ready = await fetch(`${nodeA.publicUrl}/readyz`)
  t.equal(ready.status, 503, 'draining: /readyz 503, the balancers send nothing new')
  t.match(await ready.json(), { data: { draining: true } })

  // A publish straight to A's port (past the balancer) is refused.
  const late = await owner.createStream('too late for A')
  const refused = publishTestClip(`rtmp://127.0.0.1:${rtmpA}/live/${late.stream_key}`, 30, 'late-publisher')
  await refused.exited
  t.equal((await owner.stream(late.id)).status, 'pending', 'a new publish on the draining node is refused')

  // The playlists continue on B: checked as soon as the stream is there (B's window slides on).
  const onB = await waitFor('stream 1 on node B', async () => {
    if ((await owner.stream(first.id)).ingest_node_id !== 'node-b') return null
    const playlist = await text(`${nodeB.publicUrl}/hls/${first.playback_id}/video.m3u8`)
    return playlist.includes('#EXT-X-DISCONTINUITY\n') ? playlist : null
  }, 30_000, 100)
  const firstOnB = Math.min(...msns(onB))
  t.ok(firstOnB > next, `node B's playlist continues after node A's (first msn ${firstOnB} > ${next - 1})`)
  t.match(onB, /#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="v\/init-1\.mp4"/, 'after a discontinuity, with the next init version (init-0 stays the bytes A served)')
  t.match(onB, /#EXT-X-DISCONTINUITY-SEQUENCE:0\n/, 'the discontinuity sequence carries on from A (none before)')
  const mpd = await text(`${nodeB.publicUrl}/dash/${first.playback_id}/index.mpd`)
  t.match(mpd, /<Period id="p1"/, 'DASH: the stream goes on in a new Period after the one A served')

  const exit = await nodeA.exited
  const tookMs = Date.now() - drainedAt
  t.equal(exit.code, 0, `node A exited by itself once empty (${tookMs} ms after the call)`)
  t.match(nodeA.output(), /"why":"empty"[^\n]*drain over/, 'it held nothing when it closed')

  const after = await Promise.all(streams.map((s) => owner.stream(s.id)))
  t.same(after.map((v) => [v.status, v.ingest_node_id]), streams.map(() => ['live', 'node-b']), 'all five live, now on node B')
  t.same(after.map((v) => (v as StreamView & { connection?: string }).connection), streams.map(() => 'connected'), 'connected again (not left reconnecting)')
  t.same(after.map((v) => v.playback_url), live.map((v) => v.playback_url), 'the same playback URLs')
  const [events] = (await sql.query(
    "SELECT stream_id, type, node_id, outcome FROM stream_events WHERE stream_id IN (?) AND type IN ('stream.published', 'stream.unpublished') ORDER BY id",
    [streams.map((s) => s.id)]
  )) as unknown as [Array<{ stream_id: number; type: string; node_id: string; outcome: string }>]
  t.same(events.filter((e) => e.type === 'stream.unpublished'), [], 'no stream.unpublished from either node')
  for (const s of streams) {
    const mine = events.filter((e) => e.stream_id === s.id).map((e) => `${e.node_id}:${e.outcome}`)
    t.same(mine, ['node-a:applied', 'node-b:applied'], `stream ${s.id}: published on A, then moved to B`)
  }
  t.ok(publishers.every((p) => p.runs >= 2), 'every publisher was cut and reconnected')

  for (const [which, player] of [['the playback URL (balancer)', hls], ["node B's own URL", viaNodeB]] as const) {
    await player.waitForAdvance(5, 40_000)
    t.same(await player.errors(), [], `hls.js on ${which}: 5 s more played after the drain, no fatal error`)
  }
  t.notMatch(nodeB.output(), /"level":50/, 'node B logged no error')
  t.notMatch(nodeA.output(), /"level":50/, 'node A logged no error')
})
