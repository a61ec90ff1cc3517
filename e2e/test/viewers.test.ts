import t from 'tap'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import { STREAM_EVENTS_QUEUE, newEventId, type StreamEvent } from '@livestream/events'
import { ApiUser, type StreamView } from '../src/api-client.js'
import { publishTestClip } from '../src/ffmpeg.js'
import { createStackEnv, startApi, startIngest } from '../src/stack.js'
import { startPlayers } from '../src/viewer-players.js'
import { waitFor } from '../src/wait.js'

// HLS viewer counts end to end: a real api (consumer + reaper) and two real ingest nodes, each holding a stream
// published by ffmpeg, with simulated players (own address, own `vs` token) on each. One stream's players split over
// both nodes (the one not holding it proxies them to the holder, and counts them itself) show up as their total; a
// report fed into the queue under a third node's id, which then goes silent, shows a stale report leaving the sum.

const stack = await createStackEnv('viewers')
const api = await startApi(stack, { VIEWER_REPORT_TTL_MS: '3000', REAPER_INTERVAL_MS: '500' })
const viewerEnv = { VIEWER_WINDOW_MS: '2000', VIEWER_REPORT_MS: '500' }
const nodeA = await startIngest(stack, { INGEST_NODE_ID: 'node-a', ...viewerEnv })
const nodeB = await startIngest(stack, { INGEST_NODE_ID: 'node-b', ...viewerEnv })
const owner = await ApiUser.register(api.url, 'viewers')
const redis = new Redis(stack.redisUrl)
const queue = new Queue(STREAM_EVENTS_QUEUE, { connection: redis, prefix: stack.queuePrefix })
t.teardown(async () => {
  await nodeA.stop()
  await nodeB.stop()
  await api.stop()
  await queue.close()
  redis.disconnect()
  await stack.cleanup()
})

type Counted = StreamView & { viewer_count: number; peak_viewer_count: number }
const view = async (id: number) => (await owner.stream(id)) as Counted
const counted = (id: number, viewers: number) =>
  waitFor(`stream ${id} at ${viewers} viewers`, async () => ((await view(id)).viewer_count === viewers ? view(id) : null), 20_000, 100)

const s1 = await owner.createStream('on node a')
const s2 = await owner.createStream('on node b')
const pubA = publishTestClip(nodeA.rtmpUrl(s1.stream_key), 120, 'pub-a')
const pubB = publishTestClip(nodeB.rtmpUrl(s2.stream_key), 120, 'pub-b')
t.teardown(async () => {
  await pubA.stop()
  await pubB.stop()
})
for (const [s, node] of [[s1, nodeA], [s2, nodeB]] as const) {
  await waitFor(`${s.title} live`, async () => (await view(s.id)).status === 'live')
  // HEAD: a GET would be a player, and counted.
  await waitFor(`${s.title} served`, async () => (await fetch(`${node.publicUrl}/hls/${s.playback_id}/video.m3u8`, { method: 'HEAD' })).ok)
}

t.test('players on two nodes: each stream shows its own players, through the queue and the api; the peak stays when they leave', async (t) => {
  const onA = startPlayers({ baseUrl: nodeA.publicUrl, playbackId: s1.playback_id, players: 80, intervalMs: 500 })
  const onB = startPlayers({ baseUrl: nodeB.publicUrl, playbackId: s2.playback_id, players: 50, intervalMs: 500, firstAddress: 1_000 })
  const leavers = startPlayers({ baseUrl: nodeA.publicUrl, playbackId: s1.playback_id, players: 30, intervalMs: 500, firstAddress: 2_000 })
  t.teardown(async () => {
    await Promise.all([onA.stop(), onB.stop(), leavers.stop()])
  })
  t.match(await counted(s1.id, 110), { viewer_count: 110, peak_viewer_count: 110 }, 'node a: 80 + 30 players')
  t.match(await counted(s2.id, 50), { viewer_count: 50, peak_viewer_count: 50 }, 'node b: 50 players')

  await leavers.stop()
  t.match(await counted(s1.id, 80), { viewer_count: 80, peak_viewer_count: 110 }, '30 left: 80, the peak stays 110')
  t.equal((await view(s2.id)).viewer_count, 50, 'the other stream is untouched')
  t.equal(onA.errors + onB.errors, 0, 'every player request answered')
})

t.test("one stream's count is the sum over nodes; a node that goes silent stops counting after the TTL", async (t) => {
  const onA = startPlayers({ baseUrl: nodeA.publicUrl, playbackId: s1.playback_id, players: 40, intervalMs: 500, firstAddress: 3_000 })
  t.teardown(() => onA.stop())
  await counted(s1.id, 40)
  // What node c would send for the players of this stream it serves.
  const fed: StreamEvent = { type: 'stream.viewers', id: newEventId(), nodeId: 'node-c', sessionId: 'c-1', at: new Date().toISOString(), streamId: s1.id, viewers: 25 }
  await queue.add(fed.type, fed, { jobId: fed.id })
  t.match(await counted(s1.id, 65), { viewer_count: 65 }, "node a's 40 + node c's 25")
  // Node c says nothing more: its report ages out and the reaper's refresh takes it out of the sum.
  t.match(await counted(s1.id, 40), { viewer_count: 40 }, "node c's stale report no longer counts")
})

t.test("one stream's players split over both nodes: node b proxies its players to node a and counts them, the api shows the total", async (t) => {
  await counted(s1.id, 0)
  const onA = startPlayers({ baseUrl: nodeA.publicUrl, playbackId: s1.playback_id, players: 30, intervalMs: 500, firstAddress: 5_000 })
  // The playback id of a stream node a holds, asked of node b.
  const viaB = startPlayers({ baseUrl: nodeB.publicUrl, playbackId: s1.playback_id, players: 45, intervalMs: 500, firstAddress: 6_000 })
  t.teardown(() => Promise.all([onA.stop(), viaB.stop()]))
  t.match(await counted(s1.id, 75), { viewer_count: 75 }, "node a's 30 + node b's 45, each player once")
  const gauge = async (url: string) => Number(/^livestream_ingest_viewers\{[^}]*\} (\d+)$/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1] ?? NaN)
  t.equal(await gauge(nodeA.publicUrl), 30, 'node a counts only the players that asked it (not the 45 node b proxied)')
  t.equal(await gauge(nodeB.publicUrl), 45, 'node b counts the players it proxied')
  await viaB.stop()
  t.match(await counted(s1.id, 30), { viewer_count: 30 }, "node b's players left: its report drops to 0")
  t.equal(onA.errors + viaB.errors, 0, 'every player request answered, through the proxy too')
})

t.test('the end of a stream resets its count to 0 and keeps its peak', async (t) => {
  const onB = startPlayers({ baseUrl: nodeB.publicUrl, playbackId: s2.playback_id, players: 20, intervalMs: 500, firstAddress: 4_000 })
  t.teardown(() => onB.stop())
  await counted(s2.id, 20)
  const { status } = await owner.call('POST', `/livestream/streams/${s2.id}/end`)
  t.equal(status, 200)
  const ended = await waitFor('ended', async () => {
    const v = await view(s2.id)
    return v.status === 'ended' ? v : null
  })
  t.match(ended, { viewer_count: 0, peak_viewer_count: 50 })
  // The node notices the end (key recheck), its players keep asking, and nothing brings the count back.
  await waitFor('node b no longer serves it as live', async () => {
    const text = await (await fetch(`${nodeB.publicUrl}/metrics`)).text()
    return /^livestream_ingest_viewers\{[^}]*\} 0$/m.test(text)
  })
  t.equal((await view(s2.id)).viewer_count, 0)
})
