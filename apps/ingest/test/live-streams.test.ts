import t from 'tap'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pino from 'pino'
import { EventsProducer } from '../src/events-producer.js'
import { LiveStreams } from '../src/live-streams.js'
import { testQueuePrefix } from '@livestream/events/testing'
import { dropRedisPrefix } from './helper.js'

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const log = pino({ level: 'silent' })

t.test('packaging that cannot start leaves no stream behind and sends no event, then or when the session closes', async (t) => {
  const root = await mkdtemp(path.join(tmpdir(), 'ls-live-'))
  // The HLS folder cannot be created: its parent is a file.
  await writeFile(path.join(root, 'hls'), 'not a folder')
  const queuePrefix = testQueuePrefix('live')
  const producer = new EventsProducer(REDIS_URL, queuePrefix, 'node-t', log)
  t.teardown(async () => {
    await producer.close(1_000)
    await dropRedisPrefix(queuePrefix)
    await rm(root, { recursive: true, force: true })
  })
  const live = new LiveStreams({
    ffmpegPath: process.env.FFMPEG_PATH ?? 'ffmpeg',
    mediaRoot: root,
    nodeId: 'node-t',
    segmentSeconds: 1,
    reconnectWindowMs: 100,
    mediaRetentionMs: 100,
    playbackBaseUrl: 'http://127.0.0.1:1',
    producer,
    log
  })
  let closed = 0
  const session = { id: 'sess-1', close: () => void closed++ }
  await t.rejects(live.accept({ id: 7, playbackId: 'pb7' }, 'k', '/live/k', session), /ENOTDIR|EEXIST|not a directory/)
  t.equal(live.size, 0, 'the stream is not held')
  t.equal(closed, 1, 'the session was closed')
  // What the connection's close handler does next: nothing may follow for a stream that never went live.
  live.publisherGone(7, session)
  await new Promise((r) => setTimeout(r, 400))
  t.equal(producer.stats.queued, 0, 'no stream.published, no stream.unpublished')
  t.same(live.ids(), [])
  t.same(await readdir(root), ['hls'], 'nothing else written')
})

t.test('a node shutting down removes its own media at once, and only its own', async (t) => {
  const root = await mkdtemp(path.join(tmpdir(), 'ls-live-'))
  const queuePrefix = testQueuePrefix('live')
  const producer = new EventsProducer(REDIS_URL, queuePrefix, 'node-s', log)
  t.teardown(async () => {
    await producer.close(1_000)
    await dropRedisPrefix(queuePrefix)
    await rm(root, { recursive: true, force: true })
  })
  const options = {
    ffmpegPath: process.env.FFMPEG_PATH ?? 'ffmpeg',
    mediaRoot: root,
    segmentSeconds: 1,
    reconnectWindowMs: 100,
    mediaRetentionMs: 60_000,
    playbackBaseUrl: 'http://127.0.0.1:1',
    producer,
    log
  }
  const mine = new LiveStreams({ ...options, nodeId: 'node-s' })
  const theirs = new LiveStreams({ ...options, nodeId: 'node-other' })
  const session = (id: string) => ({ id, close: () => {} })
  await mine.accept({ id: 1, playbackId: 'pbMine' }, 'k1', '/live/k1', session('a'))
  await theirs.accept({ id: 2, playbackId: 'pbTheirs' }, 'k2', '/live/k2', session('b'))
  t.same((await readdir(path.join(root, 'hls'))).sort(), ['pbMine', 'pbTheirs'])
  await mine.endAll('node-shutdown')
  t.same(await readdir(path.join(root, 'hls')), ['pbTheirs'], "its own folders go at once, not a retention later; the other node's stay")
  t.same(await readdir(path.join(root, 'dash')), ['pbTheirs'])
  await theirs.endAll('node-shutdown')
})
