import t, { type Test } from 'tap'
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import pino from 'pino'
import type { StreamEvent } from '@livestream/events'
import { testQueuePrefix } from '@livestream/events/testing'
import { EventsProducer } from '../src/events-producer.js'
import { LiveStreams } from '../src/live-streams.js'
import { Redis } from 'ioredis'
import { closeMediaHttp, createMediaHttp, type MediaHttpOptions } from '../src/media-http.js'
import { HOP_HEADER, MediaProxy } from '../src/media-proxy.js'
import type { MediaPacket } from '../src/media/cmaf-packager.js'
import { MediaWindows } from '../src/media/window.js'
import { PlaybackDirectory, parseHolder } from '../src/playback-directory.js'
import { viewerCounting } from '../src/viewer-reports.js'
import { dropRedisPrefix, tempDir, TEST_PACKAGING } from './helper.js'
import { makeFlv } from './media/helpers/ffmpeg.js'
import { flvPackets } from './media/helpers/package.js'

// Viewers across nodes, as a CDN's edge and origin count them: two nodes in one process sharing Redis, A holding a
// stream, B answering its players by proxying to A. B counts those players (their own addresses and tokens), A does
// not count them again, and each node reports the stream's viewers it counted under its own node id, which the api
// sums. Reports are driven by hand (`round()`), so that the test sees each one.
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const log = pino({ level: 'silent' })
const prefix = testQueuePrefix('xviewers')
const PER_ADDRESS = 4
const WINDOW_MS = 3_000
const redis = new Redis(REDIS_URL)
t.teardown(async () => {
  redis.disconnect()
  await dropRedisPrefix(prefix)
})

const clip = await flvPackets(await makeFlv('cross-node-viewers', { seconds: 3 }))

async function node(t: Test, nodeId: string) {
  const windows = new MediaWindows()
  const events: StreamEvent[] = []
  const producer = new EventsProducer({ redisUrl: REDIS_URL, prefix, nodeId, outboxDir: await tempDir(t, 'ls-xviewers-'), log })
  const send = producer.send.bind(producer)
  producer.send = (draft) => {
    const e = send(draft)
    events.push(e)
    return e
  }
  // Media HTTP first: its address is the node's internal URL, which goes into its holder records. It reads its proxy
  // and viewer counting per request: they join once the directory exists.
  const opts: MediaHttpOptions = {
    windows,
    host: '127.0.0.1',
    port: 0,
    requestTimeout: 5_000,
    headersTimeout: 2_000,
    health: () => ({ ok: true, detail: {} }),
    ready: () => ({ ok: true, detail: {} }),
    metrics: () => '',
    log
  }
  const server = createMediaHttp(opts)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  const url = `http://127.0.0.1:${port}`
  const directory = new PlaybackDirectory({ redisUrl: REDIS_URL, prefix, nodeId, internalUrl: url, refreshMs: 100, timelineTtlMs: 60_000, log })
  directory.start()
  const feeds = new Map<string, (p: MediaPacket) => void>()
  const live = new LiveStreams({
    windows,
    ...TEST_PACKAGING,
    reconnectWindowMs: 60_000,
    playbackBaseUrl: url,
    producer,
    log,
    directory,
    tap: (path, onPacket) => (feeds.set(path, onPacket), true)
  })
  const viewers = viewerCounting({
    windowMs: WINDOW_MS,
    perAddress: PER_ADDRESS,
    maxPerStream: 10_000,
    maxSessions: 10_000,
    reportMs: 3_600_000, // never on its own: the test calls round()
    refreshMs: 3_600_000,
    trustProxyHops: 0,
    windows,
    streams: () => live.announced(),
    send: (draft) => producer.send(draft),
    edge: { holders: (ids) => directory.holdersOf(ids), nodeId },
    log
  })
  viewers.reporter.start() // the sweep, every second
  const proxy = new MediaProxy({ directory, timeoutMs: 2_000, log })
  opts.proxy = proxy
  opts.viewers = viewers.tracking
  t.teardown(async () => {
    viewers.reporter.stop()
    await closeMediaHttp(server)
    proxy.close()
    await live.endAll('node-shutdown')
    await producer.close(1_000)
    await directory.close()
  })
  const feed = (path: string, packets: MediaPacket[]) => {
    for (const p of packets) feeds.get(path)?.(p)
  }
  const reports = () => events.filter((e) => e.type === 'stream.viewers')
  return { nodeId, url, directory, live, windows, feed, viewers, reports, port }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
async function until(fn: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await fn())) await sleep(20)
}

const agent = new http.Agent({ keepAlive: false })
t.teardown(() => agent.destroy())
function get(port: number, path: string, opts: { address: string; userAgent?: string; headers?: Record<string, string> }): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, localAddress: opts.address, agent, headers: { 'user-agent': opts.userAgent ?? 'sim-player/1', ...opts.headers } },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      }
    )
    req.on('error', reject)
    req.end()
  })
}
/** A player polling a node for the playlist until stopped; resolves its first answer's status once it has one. */
function player(port: number, opts: { address: string; token?: string; userAgent?: string; headers?: Record<string, string>; playbackId?: string }) {
  let stopped = false
  const q = opts.token ? `?vs=${opts.token}` : ''
  let first: (status: number) => void = () => undefined
  const firstStatus = new Promise<number>((r) => (first = r))
  const done = (async () => {
    while (!stopped) {
      first(await get(port, `/hls/${opts.playbackId ?? 'pbedge'}/video.m3u8${q}`, opts).catch(() => 0))
      await sleep(200)
    }
  })()
  return {
    firstStatus,
    async stop() {
      stopped = true
      await done
    }
  }
}
const token = (i: number) => `edge-player-${String(i).padStart(8, '0')}`

t.test('players reaching B for a stream A holds are counted by B (their own sessions and addresses), not again by A; each node reports its own', async (t) => {
  const a = await node(t, 'node-a')
  const b = await node(t, 'node-b')
  await a.live.accept({ id: 51, playbackId: 'pbedge' }, 'k', '/live/k', { id: 'sess-a', close: () => undefined })
  a.feed('/live/k', clip)
  await until(async () => (await b.directory.holderOf('pbedge', true))?.nodeId === 'node-a')
  const record = parseHolder(await redis.get(`${prefix}:playback:pbedge:holder`))
  t.same(record, { nodeId: 'node-a', url: a.url, stream: { streamId: 51, sessionId: 'sess-a' } }, 'the holder record carries the stream id and session')
  t.same(parseHolder(JSON.stringify({ nodeId: 'old', url: 'http://old.invalid' })), { nodeId: 'old', url: 'http://old.invalid' }, 'a record of the old format still names its holder')

  const players = [
    // 12 players on their own addresses, with tokens, through B.
    ...Array.from({ length: 12 }, (_, i) => player(b.port, { address: `127.0.20.${i + 1}`, token: token(i) })),
    // 10 from one address: B applies the per-address cap to the real address, not to anything of A's.
    ...Array.from({ length: 10 }, (_, i) => player(b.port, { address: '127.0.21.1', token: token(100 + i) })),
    // 2 without a token, on their own addresses: 2 sessions, not one.
    player(b.port, { address: '127.0.22.1' }),
    player(b.port, { address: '127.0.22.2' })
  ]
  // 3 players straight on A.
  const onA = Array.from({ length: 3 }, (_, i) => player(a.port, { address: `127.0.23.${i + 1}`, token: token(200 + i) }))
  t.teardown(() => Promise.all([...players, ...onA].map((p) => p.stop())))
  t.same(new Set(await Promise.all([...players, ...onA].map((p) => p.firstStatus))), new Set([200]), 'every player is served, through B or by A')
  // A client sending the proxy marker itself: to A it is "counted elsewhere" (so not counted: only ever fewer),
  // to B it is refused (never proxied a second time), and counted by neither.
  const dodger = player(a.port, { address: '127.0.24.1', token: token(300), headers: { [HOP_HEADER]: 'node-b' } })
  const dodgerOnB = player(b.port, { address: '127.0.24.2', token: token(301), headers: { [HOP_HEADER]: 'node-x' } })
  t.teardown(() => Promise.all([dodger.stop(), dodgerOnB.stop()]))
  t.equal(await dodger.firstStatus, 200, 'A serves a request carrying the marker')
  t.equal(await dodgerOnB.firstStatus, 404, 'B does not proxy one')
  // Each request is counted when it arrives, before its answer: every player has been counted by now.

  const onB = 12 + PER_ADDRESS + 2
  t.equal(b.viewers.tracking.total(), onB, `B counts the ${onB} players whose requests reach it`)
  t.equal(a.viewers.tracking.total(), 3, "A counts only the players that asked it directly, none of B's proxied requests")
  t.ok(b.viewers.edge?.has('pbedge'), 'B follows the stream it proxies')

  t.equal(await b.viewers.reporter.round(), 1)
  t.equal(await a.viewers.reporter.round(), 1)
  t.match(b.reports().at(-1), { type: 'stream.viewers', streamId: 51, sessionId: 'sess-a', nodeId: 'node-b', viewers: onB }, "B reports the stream's players it counted, under its own node id")
  t.match(a.reports().at(-1), { type: 'stream.viewers', streamId: 51, sessionId: 'sess-a', nodeId: 'node-a', viewers: 3 }, 'A reports its own')
  t.equal((b.reports().at(-1) as { viewers: number }).viewers + (a.reports().at(-1) as { viewers: number }).viewers, onB + 3, 'the sum the api makes is every player once')
  t.equal(await b.viewers.reporter.round(), 0, 'an unchanged count is not sent again before its refresh')

  // The players of B leave: B reports 0 once, then nothing, and stops following the stream.
  await Promise.all(players.map((p) => p.stop()))
  await until(() => b.viewers.tracking.total() === 0)
  const before = b.reports().length
  t.equal(await b.viewers.reporter.round(), 1)
  t.match(b.reports().at(-1), { streamId: 51, nodeId: 'node-b', viewers: 0 }, 'the leavers drop to 0 in one report')
  t.notOk(b.viewers.edge?.has('pbedge'), 'B no longer follows the stream')
  t.equal(await b.viewers.reporter.round(), 0, 'and reports nothing more of it')
  t.equal(b.reports().length, before + 1)
  t.equal(a.viewers.tracking.total(), 3, "A's own players are still counted")
})

t.test('when the holder record goes away, the edge reports 0 for the stream at once and stops', async (t) => {
  const a = await node(t, 'node-a2')
  const b = await node(t, 'node-b2')
  await a.live.accept({ id: 52, playbackId: 'pbedge2' }, 'k', '/live/k', { id: 'sess-a2', close: () => undefined })
  a.feed('/live/k', clip)
  await until(async () => (await b.directory.holderOf('pbedge2', true))?.nodeId === 'node-a2')
  const players = Array.from({ length: 5 }, (_, i) => player(b.port, { address: `127.0.30.${i + 1}`, token: token(400 + i), playbackId: 'pbedge2' }))
  t.same(new Set(await Promise.all(players.map((p) => p.firstStatus))), new Set([200]))
  await Promise.all(players.map((p) => p.stop()))
  t.equal(b.viewers.tracking.total(), 5)
  t.equal(await b.viewers.reporter.round(), 1)
  t.match(b.reports().at(-1), { streamId: 52, nodeId: 'node-b2', viewers: 5 })

  // A lets the stream go (it ended, or A died and its claim lapsed): within the players' window, B stops counting.
  a.directory.release('pbedge2')
  await until(async () => (await b.directory.holdersOf(['pbedge2'])).get('pbedge2') === null)
  t.equal(await b.viewers.reporter.round(), 1)
  t.match(b.reports().at(-1), { streamId: 52, nodeId: 'node-b2', viewers: 0 }, 'a last report of 0')
  t.equal(b.viewers.tracking.total(), 0, 'its sessions are forgotten')
  t.notOk(b.viewers.edge?.has('pbedge2'))
  t.equal(await b.viewers.reporter.round(), 0, 'then nothing')
})
