import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import http from 'node:http'
import { Queue } from 'bullmq'
import { createDbClient, streams, users } from '@livestream/db'
import { createTestDatabase } from '@livestream/db/testing'
import { STREAM_EVENTS_QUEUE, type StreamViewers } from '@livestream/events'
import { testQueuePrefix } from '@livestream/events/testing'
import { loadConfig } from '../src/config.js'
import { startIngest } from '../src/ingest.js'
import { capturedLogger, dropRedisPrefix, freePort, tempDir } from './helper.js'

// A real ingest (RTMP in from a real ffmpeg, LL-HLS out, events into a real queue) and many simulated players: plain
// HTTP pollers, each from its own loopback address (127.0.x.y) with its own `vs` token, as the watch page's hls.js asks.

const FFMPEG = process.env.FFMPEG_PATH ?? 'ffmpeg'
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const PER_ADDRESS = 5

const tdb = await createTestDatabase('ls_viewers_in')
const client = createDbClient({ url: tdb.url })
const [u] = await client.db.insert(users).values({ email: 'v@example.com', displayName: 'V' })
const KEY = 'b1e55ed0-e2bb-4255-8caf-4136c566a962'
const PLAYBACK = 'pbviewers1'
const [s] = await client.db.insert(streams).values({ refNo: 'LS-V1', title: 't', streamKey: KEY, playbackId: PLAYBACK, userId: u.insertId })
const streamId = s.insertId
await client.close()

const root = await tempDir(t, 'ls-viewers-')
const queuePrefix = testQueuePrefix('viewers')
const rtmpPort = await freePort()
const httpPort = await freePort()
const config = loadConfig({
  HOST: '127.0.0.1',
  RTMP_PORT: String(rtmpPort),
  HTTP_PORT: String(httpPort),
  DATABASE_URL: tdb.url,
  REDIS_URL,
  QUEUE_PREFIX: queuePrefix,
  MEDIA_ROOT: root,
  INGEST_NODE_ID: 'node-viewers',
  HLS_SEGMENT_SECONDS: '1',
  HLS_PART_SECONDS: '0.25',
  RECONNECT_WINDOW_MS: '500',
  VIEWER_WINDOW_MS: '2000',
  VIEWER_REPORT_MS: '300',
  VIEWER_SESSIONS_PER_ADDRESS: String(PER_ADDRESS),
  LOG_LEVEL: 'warn'
})
const { log } = capturedLogger('warn')
const ingest = await startIngest(config, log)
const queue = new Queue(STREAM_EVENTS_QUEUE, { connection: { url: REDIS_URL }, prefix: queuePrefix })
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
t.teardown(async () => {
  agent.destroy()
  await ingest.close()
  await queue.close()
  await dropRedisPrefix(queuePrefix)
  await tdb.drop()
})

const base = `http://127.0.0.1:${httpPort}`
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn().catch(() => null)
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (gauge: ${await gauge()})`)
    await sleep(100)
  }
}

let requests = 0
function get(path: string, opts: { address: string; userAgent?: string; method?: string }): Promise<number> {
  requests++
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: httpPort, path, method: opts.method ?? 'GET', localAddress: opts.address, agent, headers: { 'user-agent': opts.userAgent ?? 'sim-player/1' } },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      }
    )
    req.on('error', reject)
    req.end()
  })
}

/** A player that asks for the playlist (and, on the way, its multivariant) every 300 ms until stopped. */
function player(opts: { address: string; token?: string; userAgent?: string; method?: string; playbackId?: string }) {
  let stopped = false
  const q = opts.token ? `?vs=${encodeURIComponent(opts.token)}` : ''
  const id = opts.playbackId ?? PLAYBACK
  const done = (async () => {
    await get(`/hls/${id}/index.m3u8${q}`, opts).catch(() => 0)
    while (!stopped) {
      await get(`/hls/${id}/video.m3u8${q}`, opts).catch(() => 0)
      await sleep(300)
    }
  })()
  return {
    async stop() {
      stopped = true
      await done
    }
  }
}

const gauge = async () => Number(/^livestream_ingest_viewers\{[^}]*\} (\d+)$/m.exec(await (await fetch(`${base}/metrics`)).text())?.[1] ?? NaN)
/** The node's latest `stream.viewers` report in the queue (no consumer runs: every job waits). */
async function lastReport(): Promise<StreamViewers | undefined> {
  const jobs = await queue.getJobs(['waiting', 'prioritized', 'delayed'], 0, -1)
  return jobs
    .map((j) => j.data as StreamViewers)
    .filter((e) => e.type === 'stream.viewers' && e.streamId === streamId)
    .sort((a, b) => a.at.localeCompare(b.at))
    .at(-1)
}
const address = (i: number) => `127.0.${1 + (i >> 8)}.${1 + (i & 255)}`
const token = (i: number) => `sim-player-${String(i).padStart(8, '0')}`

const publisher = spawn(
  FFMPEG,
  [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-re',
    '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=15', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-t', '120', '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '15', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '32k', '-f', 'flv', `rtmp://127.0.0.1:${rtmpPort}/live/${KEY}`
  ],
  { stdio: 'ignore' }
)
const publisherExit = once(publisher, 'exit')
t.teardown(async () => {
  if (publisher.exitCode === null && publisher.signalCode === null) publisher.kill('SIGKILL')
  await publisherExit
})
await waitFor('the stream is served', async () => (await fetch(`${base}/hls/${PLAYBACK}/video.m3u8`)).ok)

t.test('150 players with their own tokens are 150 viewers; 60 leave and the count drops to 90, on /metrics and in the reports', async (t) => {
  const players = Array.from({ length: 150 }, (_, i) => player({ address: address(i), token: token(i) }))
  t.teardown(() => Promise.all(players.map((p) => p.stop())))
  t.equal(await waitFor('150 viewers on /metrics', async () => ((await gauge()) === 150 ? 150 : null)), 150)
  const up = await waitFor('a report of 150', async () => ((await lastReport())?.viewers === 150 ? lastReport() : null))
  t.match(up, { type: 'stream.viewers', streamId, nodeId: 'node-viewers', viewers: 150 }, 'reported through the queue')

  await Promise.all(players.splice(0, 60).map((p) => p.stop()))
  t.equal(await waitFor('90 viewers once the leavers are out of the window', async () => ((await gauge()) === 90 ? 90 : null)), 90)
  t.equal((await waitFor('a report of 90', async () => ((await lastReport())?.viewers === 90 ? lastReport() : null)))?.viewers, 90)
  const reports = (await queue.getJobs(['waiting'], 0, -1)).filter((j) => (j.data as StreamViewers).type === 'stream.viewers')
  t.ok(reports.length * 50 < requests, `one report per change and interval, not per request (${reports.length} reports for ${requests} requests)`)
  await Promise.all(players.map((p) => p.stop()))
  t.equal(await waitFor('0 viewers once everyone left', async () => ((await gauge()) === 0 ? 'zero' : null)), 'zero')
})

t.test('faked sessions: one address counts at most VIEWER_SESSIONS_PER_ADDRESS; HEAD, unknown streams and malformed tokens add nothing', async (t) => {
  const faker = Array.from({ length: 40 }, (_, i) => player({ address: '127.0.9.9', token: token(1_000 + i) }))
  const anonymous = [player({ address: '127.0.10.1', userAgent: 'VLC/3.0' }), player({ address: '127.0.10.1', userAgent: 'Safari/17' }), player({ address: '127.0.10.2', userAgent: 'VLC/3.0' })]
  const heads = Array.from({ length: 10 }, (_, i) => player({ address: address(500 + i), token: token(2_000 + i), method: 'HEAD' }))
  const unknown = Array.from({ length: 10 }, (_, i) => player({ address: address(600 + i), token: token(3_000 + i), playbackId: 'not-live-here' }))
  const bad = Array.from({ length: 10 }, (_, i) => player({ address: '127.0.11.1', token: `bad token ${i}`, userAgent: 'same' }))
  const all = [...faker, ...anonymous, ...heads, ...unknown, ...bad]
  t.teardown(() => Promise.all(all.map((p) => p.stop())))
  // Every player has made a request or more once the count is stable: 5 + 3 + 1.
  const expected = PER_ADDRESS + 3 + 1
  t.equal(await waitFor(`${expected} viewers`, async () => ((await gauge()) === expected ? expected : null)), expected)
  await sleep(1_000)
  t.equal(await gauge(), expected, 'and no more a second later')
  await Promise.all(all.map((p) => p.stop()))
})

t.test('requests for a stream that ended are not counted', async (t) => {
  const players = Array.from({ length: 20 }, (_, i) => player({ address: address(700 + i), token: token(4_000 + i) }))
  t.teardown(() => Promise.all(players.map((p) => p.stop())))
  t.equal(await waitFor('20 viewers', async () => ((await gauge()) === 20 ? 20 : null)), 20)
  publisher.kill('SIGKILL')
  await publisherExit
  // The ended window stays served for MEDIA_RETENTION_MS: the players keep getting answers, yet count for nothing.
  t.equal(await waitFor('0 viewers once the stream ended', async () => ((await gauge()) === 0 ? 'zero' : null)), 'zero')
  t.equal((await get(`/hls/${PLAYBACK}/video.m3u8?vs=${token(4_000)}`, { address: address(700) })), 200, 'its playlist is still served')
  await sleep(1_200)
  t.equal(await gauge(), 0, 'still nobody')
})
