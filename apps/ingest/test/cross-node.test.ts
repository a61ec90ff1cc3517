import t, { type Test } from 'tap'
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import pino from 'pino'
import { Redis } from 'ioredis'
import { testQueuePrefix } from '@livestream/events/testing'
import { EventsProducer } from '../src/events-producer.js'
import { LiveStreams } from '../src/live-streams.js'
import { HOP_HEADER, MediaProxy } from '../src/media-proxy.js'
import type { MediaPacket } from '../src/media/cmaf-packager.js'
import { MediaWindows } from '../src/media/window.js'
import { PlaybackDirectory } from '../src/playback-directory.js'
import { dropRedisPrefix, serveMedia, tempDir, TEST_PACKAGING } from './helper.js'
import { makeFlv } from './media/helpers/ffmpeg.js'
import { flvPackets } from './media/helpers/package.js'

// Two nodes in one process, sharing Redis (the playback directory) as two ingest processes would: a stream that
// moves from one to the other continues its playlists there, the old node lets it go without a word, and media HTTP
// on either node answers for it, proxying to the holder within bounds.
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const log = pino({ level: 'silent' })
const prefix = testQueuePrefix('xnode')
const redis = new Redis(REDIS_URL)
t.teardown(async () => {
  redis.disconnect()
  await dropRedisPrefix(prefix)
})

const clip = await flvPackets(await makeFlv('cross-node-av', { seconds: 3 }))

async function node(t: Test, nodeId: string, internalUrl = `http://${nodeId}.invalid:8000`) {
  const directory = new PlaybackDirectory({ redisUrl: REDIS_URL, prefix, nodeId, internalUrl, refreshMs: 100, timelineTtlMs: 60_000, log })
  directory.start()
  const producer = new EventsProducer({ redisUrl: REDIS_URL, prefix, nodeId, outboxDir: await tempDir(t, 'ls-xnode-'), log })
  const sent: string[] = []
  const send = producer.send.bind(producer)
  producer.send = (e) => (sent.push(e.type), send(e))
  const feeds = new Map<string, (p: MediaPacket) => void>()
  const windows = new MediaWindows()
  const live = new LiveStreams({
    windows,
    ...TEST_PACKAGING,
    reconnectWindowMs: 60_000,
    playbackBaseUrl: internalUrl,
    producer,
    log,
    directory,
    tap: (path, onPacket) => (feeds.set(path, onPacket), true)
  })
  t.teardown(async () => {
    await live.endAll('node-shutdown')
    await producer.close(1_000)
    await directory.close()
  })
  const feed = (path: string, packets: MediaPacket[]) => {
    for (const p of packets) feeds.get(path)?.(p)
  }
  return { directory, live, windows, sent, feed }
}

const session = (id: string) => ({ id, close: () => undefined })
/** Until `fn` is true (Redis writes are fire-and-forget). */
async function until(fn: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await fn())) await new Promise((r) => setTimeout(r, 20))
}

t.test('a stream that reconnects through another node continues its playlists there; the old node lets it go with no event', async (t) => {
  const a = await node(t, 'node-a')
  const b = await node(t, 'node-b')
  const target = { id: 41, playbackId: 'pbmove' }
  const onA = session('sa')
  await a.live.accept(target, 'k', '/live/k', onA)
  a.feed('/live/k', clip)
  t.same(a.sent, ['stream.published'])
  const wa = a.windows.get('pbmove')
  const lastOnA = wa?.leader?.segments.at(-1)?.msn as number
  t.ok(lastOnA >= 2, `node A wrote segments 0..${lastOnA}`)
  await until(async () => (await a.directory.holderOf('pbmove', true))?.nodeId === 'node-a')

  // The drain cuts the publisher on A; it comes back through B.
  a.live.publisherGone(41, onA)
  await until(async () => (await redis.get(`${prefix}:playback:pbmove:timeline`)) !== null)
  const timelineKey = `${prefix}:playback:pbmove:timeline`
  const saved = JSON.parse((await redis.get(timelineKey)) as string) as { endPdt: number }
  const endOnA = wa?.leader?.segments.at(-1)
  t.ok(endOnA?.complete, 'A closed its open segment when the publisher left: players see it end')
  t.equal(saved.endPdt, Math.round((endOnA?.programDateTime ?? 0) + (endOnA?.duration ?? 0) * 1000), "the timeline says where A's media ended")
  // This test feeds a 3 s clip at once (its media ends 3 s ahead of the clock): as if A's media had ended 5 s ago,
  // after a long reconnect.
  const endPdt = Date.now() - 5_000
  await redis.set(timelineKey, JSON.stringify({ ...saved, endPdt }), 'KEEPTTL')
  await b.live.accept(target, 'k', '/live/k', session('sb'))
  t.notOk(b.windows.get('pbmove'), 'B serves nothing of it before it has media (players go on asking A)')
  b.feed('/live/k', clip)
  t.same(b.sent, ['stream.published'], 'B announces it: the api moves the stream there')
  const wb = b.windows.get('pbmove')
  const video = wb?.tracks.get('video')
  const first = video?.segments[0]
  t.equal(first?.msn, lastOnA + 2, 'B continues the media sequence after A, skipping the one A may have hinted')
  t.equal(first?.discontinuity, true, 'after a discontinuity')
  t.equal(first?.initVersion, 1, 'with the next init version: init-0 stays the bytes A served')
  t.equal(video?.discontinuitySequence, 0, 'the discontinuity count carries on from A (none before)')
  t.equal(wb?.availabilityStartTime, wa?.availabilityStartTime, 'the same DASH availabilityStartTime')
  const pdt = first?.programDateTime ?? 0
  t.ok(pdt >= endPdt && pdt < endPdt + 1_000, `dated from where A's media ended (+${pdt - endPdt} ms), not from its arrival 5 s later`)

  await until(async () => (await a.directory.holderOf('pbmove', true))?.nodeId === 'node-b')
  // A still holds the stream (within the reconnect window) and refreshes its claims: never over B's.
  await new Promise((r) => setTimeout(r, 500))
  t.equal((await a.directory.holderOf('pbmove', true))?.nodeId, 'node-b', "A's claim refreshes do not take the stream back from B")
  await a.live.checkMovedAway()
  t.equal(a.live.size, 0, 'A holds nothing any more')
  t.notOk(a.windows.get('pbmove'), 'and serves nothing of it itself')
  t.same(a.sent, ['stream.published', 'stream.reconnecting'], 'A told the api its publisher dropped, and sent no stream.unpublished')
  t.equal(a.live.stats.movedAway, 1)
})

t.test('media HTTP answers a playback id another node holds by proxying to it: our paths, the LL-HLS query only, one hop', async (t) => {
  const seen: Array<{ url: string; hop: string | undefined }> = []
  let hang = false
  const upstream = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', hop: req.headers[HOP_HEADER] as string | undefined })
    if (hang) return // never answers
    res.writeHead(200, { 'content-type': 'application/vnd.apple.mpegurl', 'cache-control': 'public, max-age=1', connection: 'keep-alive' })
    res.end('#EXTM3U\n#from-the-holder\n')
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  t.teardown(() => new Promise<void>((r) => (upstream.closeAllConnections(), upstream.close(() => r()))))
  const holderUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`

  const directory = new PlaybackDirectory({ redisUrl: REDIS_URL, prefix, nodeId: 'edge', internalUrl: 'http://edge.invalid', refreshMs: 1_000, timelineTtlMs: 60_000, log })
  const proxy = new MediaProxy({ directory, timeoutMs: 300, log })
  const { base } = await serveMedia(t, { proxy, log })
  t.teardown(async () => {
    proxy.close()
    await directory.close()
  })
  await redis.set(`${prefix}:playback:held:holder`, JSON.stringify({ nodeId: 'origin', url: holderUrl }))
  await redis.set(`${prefix}:playback:ftp:holder`, JSON.stringify({ nodeId: 'origin', url: 'ftp://127.0.0.1/' }))

  const res = await fetch(`${base}/hls/held/video.m3u8?_HLS_msn=7&_HLS_part=2&_HLS_skip=YES&evil=1&url=http://x`)
  t.equal(res.status, 200)
  t.equal(await res.text(), '#EXTM3U\n#from-the-holder\n', "the holder's answer, as it is")
  t.equal(res.headers.get('cache-control'), 'public, max-age=1', 'with its caching headers')
  t.same(seen.at(-1), { url: '/hls/held/video.m3u8?_HLS_msn=7&_HLS_part=2&_HLS_skip=YES', hop: 'edge' }, 'only the delivery directives go upstream, marked as proxied')

  const before = seen.length
  t.equal((await fetch(`${base}/hls/unknown/video.m3u8`)).status, 404, 'no holder: 404')
  t.equal((await fetch(`${base}/hls/held/video.m3u8`, { headers: { [HOP_HEADER]: 'other' } })).status, 404, 'already proxied once: 404, never a second hop')
  t.equal((await fetch(`${base}/hls/ftp/video.m3u8`)).status, 404, 'a holder URL that is not http(s) is never used')
  t.equal((await fetch(`${base}/hls/held/../../etc/passwd`)).status, 404, 'anything but our media paths: 404')
  t.equal((await fetch(`${base}/other/held`)).status, 404)
  t.equal(seen.length, before, 'none of those reached the holder')

  hang = true
  const slow = await fetch(`${base}/hls/held/v/3.m4s`)
  t.equal(slow.status, 502, 'a holder that does not answer within the timeout: 502')
  t.match(await slow.json(), { success: false }, 'in the envelope')
  t.equal(proxy.stats.failed, 1)
})
