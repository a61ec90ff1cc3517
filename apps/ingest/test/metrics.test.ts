import t from 'tap'
import { once } from 'node:events'
import net, { type AddressInfo } from 'node:net'
import pino from 'pino'
import { testQueuePrefix } from '@livestream/events/testing'
import { EventsProducer } from '../src/events-producer.js'
import { LiveStreams, PACKAGING_SAMPLE_EVERY } from '../src/live-streams.js'
import { MediaWindows } from '../src/media/window.js'
import type { MediaPacket } from '../src/media/cmaf-packager.js'
import { IngestMetrics, TrafficCounter } from '../src/metrics.js'
import { PublishAuth } from '../src/publish-auth.js'
import { dropRedisPrefix, serveMedia, tempDir, TEST_PACKAGING } from './helper.js'
import { makeFlv } from './media/helpers/ffmpeg.js'
import { flvPackets } from './media/helpers/package.js'
// @ts-expect-error: a plain ES module of the repo's scripts, without types
import { kitProblems } from '../../../scripts/infra/metrics-kit.mjs'

const log = pino({ level: 'silent' })
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const KEY = '0b7f4c1e-0f5a-4c35-9d0e-3f6a1d2b9c11'

// A node's parts, fed by the test: publish auth over a fake lookup, live streams fed packets directly.
const queuePrefix = testQueuePrefix('metrics')
const producer = new EventsProducer({ redisUrl: REDIS_URL, prefix: queuePrefix, nodeId: 'node-m', outboxDir: await tempDir(t, 'ls-metrics-outbox-'), log })
const auth = new PublishAuth({
  lookup: async (key) => (key === KEY ? { id: 7, playbackId: 'pb7', status: 'pending' } : null) as never,
  cacheMs: 0,
  failLimit: 100,
  slowdownMaxMs: 10,
  log
})
const metrics = new IngestMetrics('node-m')
const feeds = new Map<string, (p: MediaPacket) => void>()
const windows = new MediaWindows()
const live = new LiveStreams({
  windows,
  ...TEST_PACKAGING,
  reconnectWindowMs: 60_000,
  playbackBaseUrl: 'http://127.0.0.1:1',
  producer,
  observer: metrics.observer,
  log,
  tap: (path, onPacket) => (feeds.set(path, onPacket), true)
})
const rtmp = new TrafficCounter()
const media = new TrafficCounter()
let viewers = 0
let draining = false
metrics.readFrom({ live, windows, auth, producer, rtmp, media, viewers: () => viewers, draining: () => draining })
t.teardown(async () => {
  rtmp.stop()
  await live.endAll('node-shutdown')
  await producer.close(1_000)
  await dropRedisPrefix(queuePrefix)
})

/** The value of one sample by name and labels (the `node` label is implied), or undefined. */
const sample = (text: string, name: string, labels: Record<string, string> = {}): number | undefined => {
  const want = { node: 'node-m', ...labels }
  for (const line of text.split('\n')) {
    const m = /^([^{ ]+)\{(.*)\} (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const found = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]))
    if (Object.keys(found).length === Object.keys(want).length && Object.entries(want).every(([k, v]) => found[k] === v)) return Number(m[3])
  }
  return undefined
}

const clip = await flvPackets(await makeFlv('metrics-av', { seconds: 3 }))

t.test('a publish: live streams, publishes by outcome, segment durations and packaging time', async (t) => {
  t.same((await auth.authorize('not-a-key', '10.0.0.1')).ok, false)
  t.same((await auth.authorize('0b7f4c1e-0f5a-4c35-9d0e-3f6a1d2b9c12', '10.0.0.1')).ok, false)
  const verdict = await auth.authorize(KEY, '10.0.0.2')
  t.ok(verdict.ok)
  const session = { id: 's1', close() {} }
  live.accept({ id: 7, playbackId: 'pb7' }, KEY, '/live/k7', session)
  for (const p of clip) feeds.get('/live/k7')!(p)
  live.publisherGone(7, session)
  live.accept({ id: 7, playbackId: 'pb7' }, KEY, '/live/k7', { id: 's2', close() {} })

  const text = await metrics.render()
  t.equal(sample(text, 'livestream_ingest_live_streams'), 1)
  t.equal(sample(text, 'livestream_ingest_publishes_total', { outcome: 'accepted' }), 1)
  t.equal(sample(text, 'livestream_ingest_publishes_total', { outcome: 'refused_key' }), 2)
  t.equal(sample(text, 'livestream_ingest_publishes_total', { outcome: 'resumed' }), 1)
  t.equal(sample(text, 'livestream_ingest_publishes_total', { outcome: 'refused_media' }), 0)
  t.ok(sample(text, 'livestream_ingest_media_window_bytes')! > 0)

  const videoSegments = sample(text, 'livestream_ingest_segment_duration_seconds_count')!
  t.ok(videoSegments >= 1, `video segments were cut and measured (${videoSegments})`)
  t.equal(videoSegments, windows.get('pb7')!.track('video').segments.filter((s) => s.complete).length, 'one observation per complete video segment, none for audio')
  const sum = sample(text, 'livestream_ingest_segment_duration_seconds_sum')!
  t.ok(sum / videoSegments > 0.5 && sum / videoSegments < 3, `about the 1 s target between keyframes (${sum / videoSegments})`)
  const packaged = sample(text, 'livestream_ingest_packaging_seconds_count')!
  t.equal(packaged, Math.floor(clip.length / PACKAGING_SAMPLE_EVERY), `one packet in ${PACKAGING_SAMPLE_EVERY} is timed`)
  t.ok(sample(text, 'livestream_ingest_packaging_seconds_sum')! > 0)
})

t.test('viewers and draining come from getters; the outbox depth from the producer', async (t) => {
  viewers = 12
  draining = true
  t.teardown(() => {
    viewers = 0
    draining = false
  })
  const text = await metrics.render()
  t.equal(sample(text, 'livestream_ingest_viewers'), 12)
  t.equal(sample(text, 'livestream_ingest_draining'), 1)
  t.equal(sample(text, 'livestream_ingest_outbox_events'), producer.stats.pending)
  t.equal(sample(text, 'livestream_ingest_events_queued_total'), producer.stats.queued)
  t.ok(producer.stats.queued >= 1, 'stream.published was produced')
})

t.test('bytes in and out and the ingest bitrate are read from the sockets', async (t) => {
  let accepted: net.Socket | undefined
  const server = net.createServer((socket) => {
    accepted = socket
    socket.on('data', () => socket.write('ok'))
  })
  rtmp.watch(server)
  media.watch(server)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  rtmp.start()
  const before = { read: rtmp.bytesRead, written: media.bytesWritten }
  const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1')
  await once(client, 'connect')
  client.write(Buffer.alloc(100_000, 1))
  let got = 0
  for await (const chunk of client) {
    got += (chunk as Buffer).length
    if (rtmp.bytesRead - before.read >= 100_000) break
  }
  t.ok(got >= 2)
  const open = await metrics.render()
  t.equal(sample(open, 'livestream_ingest_received_bytes_total')! - before.read, 100_000, 'an open connection counts')
  t.ok(sample(open, 'livestream_ingest_received_bits_per_second')! > 0, 'the bitrate moved')
  t.ok(media.bytesWritten - before.written >= 2, 'written bytes count')
  const closed = once(accepted!, 'close')
  client.destroy()
  await closed
  t.equal(sample(await metrics.render(), 'livestream_ingest_received_bytes_total')! - before.read, 100_000, 'a closed connection still counts, once')
})

t.test('every metric has HELP, TYPE and the node label; no label names a stream, a key or a URL', async (t) => {
  const text = await metrics.render()
  const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]))
  const help = new Set([...text.matchAll(/^# HELP (\S+) \S/gm)].map((m) => m[1]))
  for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) {
    const name = /^([a-z_:][a-z0-9_:]*)\{/.exec(line)?.[1]
    t.ok(name, `a sample with labels: ${line.slice(0, 60)}`)
    const family = types.has(name!) ? name! : name!.replace(/_(bucket|sum|count)$/, '')
    t.ok(types.has(family) && help.has(family), `${family} has HELP and TYPE`)
    if (types.get(family) === 'counter') t.match(family, /_total$/)
    t.match(line, /node="node-m"/)
  }
  for (const secret of [KEY, 'pb7', '/live/', 'k7']) t.notOk(text.includes(secret), 'nothing of a stream in the labels')
  for (const name of [
    'process_cpu_seconds_total',
    'livestream_ingest_live_streams',
    'livestream_ingest_publishes_total',
    'livestream_ingest_received_bytes_total',
    'livestream_ingest_sent_bytes_total',
    'livestream_ingest_received_bits_per_second',
    'livestream_ingest_segment_duration_seconds',
    'livestream_ingest_packaging_seconds',
    'livestream_ingest_viewers',
    'livestream_ingest_outbox_events',
    'livestream_ingest_draining'
  ]) {
    t.ok(types.has(name), `${name} is exported`)
  }
})

t.test('every metric the operations kit queries (infra/metrics.json) is exported with its type and labels (and node)', async (t) => {
  t.same(kitProblems(await metrics.render(), 'ingest', ['node']), [], 'every metric the operations kit queries is exported with its type, labels and values')
})

t.test('media HTTP serves them at /metrics in the Prometheus text format', async (t) => {
  const { server, base } = await serveMedia(t, { windows, metrics: () => metrics.render(), log })
  media.watch(server)
  const res = await fetch(`${base}/metrics`)
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8')
  const text = await res.text()
  t.match(text, /^livestream_ingest_live_streams\{node="node-m"\} 1$/m)
  const again = await (await fetch(`${base}/metrics`)).text()
  t.ok(sample(again, 'livestream_ingest_sent_bytes_total')! >= Buffer.byteLength(text), 'the answer itself is counted as sent')
})
