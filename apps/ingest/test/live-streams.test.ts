import t from 'tap'
import pino from 'pino'
import { EventsProducer } from '../src/events-producer.js'
import { LiveStreams, type LiveStreamsOptions } from '../src/live-streams.js'
import { MediaWindows } from '../src/media/window.js'
import { testQueuePrefix } from '@livestream/events/testing'
import { dropRedisPrefix, TEST_PACKAGING } from './helper.js'
import type { MediaPacket } from '../src/media/cmaf-packager.js'
import { makeFlv } from './media/helpers/ffmpeg.js'
import { flvPackets } from './media/helpers/package.js'
import { tag } from './media/helpers/flv-file.js'
import { tempDir } from './helper.js'

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const log = pino({ level: 'silent' })

/** A LiveStreams whose publishes are fed by the test instead of node-media-server. */
async function setup(t: { teardown(fn: () => Promise<void>): void }, over: Partial<LiveStreamsOptions> = {}) {
  const queuePrefix = testQueuePrefix('live')
  const producer = new EventsProducer({
    redisUrl: REDIS_URL,
    prefix: queuePrefix,
    nodeId: 'node-t',
    outboxDir: await tempDir(t, 'ls-live-outbox-'),
    log
  })
  const sent: string[] = []
  /** The reasons of the `stream.unpublished` events sent. */
  const reasons: string[] = []
  const send = producer.send.bind(producer)
  /** Each event's session. */
  const sessions: string[] = []
  producer.send = (e) => (sent.push(e.type), sessions.push(e.sessionId), e.type === 'stream.unpublished' && reasons.push(e.reason), send(e))
  const feeds = new Map<string, (p: MediaPacket) => void>()
  const windows = new MediaWindows()
  const live = new LiveStreams({
    windows,
    ...TEST_PACKAGING,
    reconnectWindowMs: 300,
    playbackBaseUrl: 'http://127.0.0.1:1',
    producer,
    log,
    tap: (path, onPacket) => (feeds.set(path, onPacket), true),
    ...over
  })
  t.teardown(async () => {
    await live.endAll('node-shutdown')
    await producer.close(1_000)
    await dropRedisPrefix(queuePrefix)
  })
  const session = (id: string) => {
    const s = { id, closed: 0, close: () => void s.closed++ }
    return s
  }
  const feed = (path: string, packets: MediaPacket[]) => {
    for (const p of packets) feeds.get(path)?.(p)
  }
  return { live, windows, sent, sessions, reasons, session, feed }
}

const clip = await flvPackets(await makeFlv('live-streams-av', { seconds: 2 }))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('a publish is live once its first part is packaged: stream.published then, not at accept', async (t) => {
  const { live, windows, sent, session, feed } = await setup(t)
  live.accept({ id: 1, playbackId: 'pb1' }, 'k1', '/live/k1', session('s1'))
  t.same(sent, [], 'nothing announced at accept: no media yet')
  t.ok(windows.get('pb1'), 'the window is registered for media HTTP')
  feed('/live/k1', clip.slice(0, 3))
  t.same(sent, [], 'sequence headers alone make no part')
  feed('/live/k1', clip)
  t.same(sent, ['stream.published'], 'announced once')
  t.same([...(windows.get('pb1')?.tracks.keys() ?? [])].sort(), ['audio', 'video'])
})

t.test('media that cannot be packaged (not H.264/AAC) is refused with no event at all', async (t) => {
  const { live, windows, sent, session, feed } = await setup(t)
  const s = session('s2')
  live.accept({ id: 2, playbackId: 'pb2' }, 'k2', '/live/k2', s)
  const hevc = tag.video({ key: true, dts: 0 })
  hevc.data[0] = 0x10 | 12 // codec id 12: HEVC in enhanced FLV's legacy slot
  feed('/live/k2', [hevc])
  t.equal(s.closed, 1, 'the publisher is cut')
  t.equal(live.size, 0, 'nothing held')
  t.equal(windows.get('pb2'), undefined, 'nothing served')
  live.publisherGone(2, s)
  await sleep(400)
  t.same(sent, [], 'no stream.published, no stream.unpublished')
  t.equal(live.stats.refusedMedia, 1)
})

t.test('a publisher gone before its first part leaves nothing behind and sends nothing', async (t) => {
  const { live, sent, session, feed } = await setup(t)
  const s = session('s3')
  live.accept({ id: 3, playbackId: 'pb3' }, 'k3', '/live/k3', s)
  feed('/live/k3', clip.slice(0, 2))
  live.publisherGone(3, s)
  await sleep(400)
  t.equal(live.size, 0)
  t.same(sent, [])
})

t.test('a reconnect within the window continues the same window after a discontinuity; the end closes it, retention removes it', async (t) => {
  const { live, windows, sent, session, feed } = await setup(t)
  const first = session('s4')
  live.accept({ id: 4, playbackId: 'pb4' }, 'k4', '/live/k4', first)
  feed('/live/k4', clip)
  const window = windows.get('pb4')
  const before = window?.leader?.segments.at(-1)?.msn ?? -1
  live.publisherGone(4, first)
  live.accept({ id: 4, playbackId: 'pb4' }, 'k4', '/live/k4', session('s4b'))
  feed('/live/k4', clip)
  t.equal(windows.get('pb4'), window, 'the same window')
  const after = window?.leader?.segments.filter((s) => s.msn > before) ?? []
  t.ok(after.length > 0 && after[0]?.discontinuity, 'the new publish starts a discontinuity segment')
  t.same(sent, ['stream.published', 'stream.reconnecting', 'stream.resumed'], 'no second announce: the drop and the return are told')
  t.equal(live.stats.resumed, 1)
  await live.end(4, 'publisher-left')
  t.ok(window?.ended, 'the playlists end (EXT-X-ENDLIST)')
  t.equal(windows.get('pb4'), window, 'still served during the retention')
  await sleep(450)
  t.equal(windows.get('pb4'), undefined, 'gone after it')
  t.same(sent, ['stream.published', 'stream.reconnecting', 'stream.resumed', 'stream.unpublished'])
})

t.test('a rotated key cuts the publisher but not the stream: a publish with the new key within the window resumes it', async (t) => {
  const { live, windows, sent, session, feed } = await setup(t)
  const leaked = session('s5')
  live.accept({ id: 5, playbackId: 'pb5' }, 'old5', '/live/old5', leaked)
  feed('/live/old5', clip)
  const window = windows.get('pb5')
  const before = window?.leader?.segments.at(-1)?.msn ?? -1
  live.keyRotated(5, 'new5')
  t.equal(leaked.closed, 1, 'the publisher on the old key is cut')
  live.publisherGone(5, leaked) // its connection closes
  t.ok(live.holds(5, 'new5'), 'the stream stays held, under the new key (the next recheck finds it valid)')
  live.accept({ id: 5, playbackId: 'pb5' }, 'new5', '/live/new5', session('s5b'))
  feed('/live/old5', clip) // whatever the cut connection still had in flight
  const fromOld = window?.leader?.segments.filter((s) => s.msn > before).length ?? 0
  t.equal(fromOld, 0, 'nothing from the old key reaches the playlists once cut')
  feed('/live/new5', clip)
  t.equal(windows.get('pb5'), window, 'the same window: the playlist continues')
  const after = window?.leader?.segments.filter((s) => s.msn > before) ?? []
  t.ok(after.length > 0 && after[0]?.discontinuity, 'after a discontinuity')
  await sleep(450)
  t.same(sent, ['stream.published', 'stream.reconnecting', 'stream.resumed'], 'never unpublished, never announced twice: the api sees it live throughout, reconnecting while cut')
  t.equal(live.size, 1)
})

t.test('a rotated key with nobody coming back ends the stream with key-rotated after the window, not before', async (t) => {
  const { live, sent, reasons, session, feed } = await setup(t)
  const leaked = session('s6')
  live.accept({ id: 6, playbackId: 'pb6' }, 'old6', '/live/old6', leaked)
  feed('/live/old6', clip)
  live.keyRotated(6, 'new6')
  live.publisherGone(6, leaked)
  await sleep(150)
  t.same(sent, ['stream.published', 'stream.reconnecting'], 'still live inside the window (300 ms here), reconnecting once')
  await sleep(300)
  t.same(sent, ['stream.published', 'stream.reconnecting', 'stream.unpublished'])
  t.same(reasons, ['key-rotated'])
  t.equal(live.size, 0)
})

t.test('a publish with the new key before the recheck noticed the rotation replaces the publisher still on the old key', async (t) => {
  const { live, windows, sent, session, feed } = await setup(t)
  const leaked = session('s7')
  live.accept({ id: 7, playbackId: 'pb7' }, 'old7', '/live/old7', leaked)
  feed('/live/old7', clip)
  const window = windows.get('pb7')
  const before = window?.leader?.segments.at(-1)?.msn ?? -1
  live.accept({ id: 7, playbackId: 'pb7' }, 'new7', '/live/new7', session('s7b'))
  t.equal(leaked.closed, 1, 'the old-key publisher is cut')
  feed('/live/old7', clip)
  t.equal(window?.leader?.segments.filter((s) => s.msn > before).length, 0, 'and feeds nothing any more')
  live.publisherGone(7, leaked)
  t.ok(live.holds(7, 'new7'))
  await sleep(450)
  t.same(sent, ['stream.published'], 'the stream stays live and connected under the new publisher: no reconnecting')
})

t.test('a publisher that drops sends stream.reconnecting at once; one that comes back sends stream.resumed under its new session', async (t) => {
  const { live, sent, sessions, session, feed } = await setup(t, { reconnectWindowMs: 5_000 })
  const first = session('s8')
  live.accept({ id: 8, playbackId: 'pb8' }, 'k8', '/live/k8', first)
  feed('/live/k8', clip)
  live.publisherGone(8, first)
  t.same(sent, ['stream.published', 'stream.reconnecting'], 'told at the drop, not at the end of the window')
  live.publisherGone(8, first)
  t.same(sent, ['stream.published', 'stream.reconnecting'], 'a second close of the same connection tells nothing more')
  live.accept({ id: 8, playbackId: 'pb8' }, 'k8', '/live/k8', session('s8b'))
  t.same(sent, ['stream.published', 'stream.reconnecting', 'stream.resumed'])
  t.same(sessions, ['s8', 's8', 's8b'], 'the drop names the publish, the return the connection that came back')
  t.match(live.stats, { published: 1, unpublished: 0, reconnecting: 1, resumed: 1, refusedMedia: 0 })
})

t.test('a publisher gone before going live never shows as reconnecting', async (t) => {
  const { live, sent, session, feed } = await setup(t)
  const s = session('s9')
  live.accept({ id: 9, playbackId: 'pb9' }, 'k9', '/live/k9', s)
  feed('/live/k9', clip.slice(0, 2))
  live.publisherGone(9, s)
  live.accept({ id: 9, playbackId: 'pb9' }, 'k9', '/live/k9', session('s9b'))
  t.same(sent, [], 'no reconnecting, no resumed: it was never live')
})

t.test('a rotation while the publisher is already gone keeps its one reconnecting', async (t) => {
  const { live, sent, session, feed } = await setup(t, { reconnectWindowMs: 5_000 })
  const s = session('s10')
  live.accept({ id: 10, playbackId: 'pb10' }, 'old10', '/live/old10', s)
  feed('/live/old10', clip)
  live.publisherGone(10, s)
  live.keyRotated(10, 'new10')
  t.same(sent, ['stream.published', 'stream.reconnecting'])
})
