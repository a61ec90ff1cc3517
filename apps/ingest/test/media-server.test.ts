import t from 'tap'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import http from 'node:http'
import { createRequire } from 'node:module'
import net from 'node:net'
import { networkInterfaces, tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { createSigner } from 'fast-jwt'
import { createDbClient, findStreamByKey, streams, users } from '@livestream/db'
import { createTestDatabase } from '@livestream/db/testing'
import { loadConfig } from '../src/config.js'
import { EventsProducer } from '../src/events-producer.js'
import { LiveStreams } from '../src/live-streams.js'
import { MediaWindows } from '../src/media/window.js'
import { bridgeMediaServerLogs } from '../src/logger.js'
import { createMediaServer, storePath } from '../src/media-server.js'
import { PublishAuth } from '../src/publish-auth.js'
import { testQueuePrefix } from '@livestream/events/testing'
import { capturedLogger, dropRedisPrefix, freePort } from './helper.js'

const require = createRequire(import.meta.url)
const Context = require('node-media-server/src/core/context.js') as { eventEmitter: NodeJS.EventEmitter }
const FFMPEG = process.env.FFMPEG_PATH ?? 'ffmpeg'
const run = promisify(execFile)

const tdb = await createTestDatabase('ls_mserver')
const client = createDbClient({ url: tdb.url })
const [u] = await client.db.insert(users).values({ email: 'm@example.com', displayName: 'M' })
const KEY = 'c0ffee00-e2bb-4255-8caf-4136c566a962'
const PLAYBACK = 'pbms1'
await client.db.insert(streams).values({ refNo: 'LS-M1', title: 't', streamKey: KEY, playbackId: PLAYBACK, userId: u.insertId })

const root = await mkdtemp(path.join(tmpdir(), 'ls-mserver-'))
const rtmpPort = await freePort()
const adminPort = await freePort()
/** SECRET as an operator who copied the api's user-token secret there would set it. */
const SECRET = randomBytes(24).toString('hex')
const config = loadConfig({
  HOST: '0.0.0.0',
  RTMP_PORT: String(rtmpPort),
  ADMIN_PORT: String(adminPort),
  API_USER: 'operator',
  API_PASS: 'correct horse battery',
  SECRET,
  MEDIA_ROOT: root,
  INGEST_NODE_ID: 'node-ms',
  HTTP_REQUEST_TIMEOUT_MS: '2000',
  HTTP_HEADERS_TIMEOUT_MS: '1000'
})
const { log, lines: logLines } = capturedLogger()
bridgeMediaServerLogs(log)
const queuePrefix = testQueuePrefix('ms')
const producer = new EventsProducer({
  redisUrl: 'redis://127.0.0.1:6379',
  prefix: queuePrefix,
  nodeId: config.nodeId,
  outboxDir: config.outboxDir,
  log
})
let lookups = 0
const auth = new PublishAuth({
  lookup: (key) => (lookups++, findStreamByKey(client.db, key)),
  cacheMs: 0,
  failLimit: 100,
  slowdownMaxMs: 100,
  log
})
const windows = new MediaWindows()
const live = new LiveStreams({
  windows,
  segmentSeconds: 1,
  partSeconds: 0.25,
  windowSegments: 4,
  reconnectWindowMs: 500,
  mediaRetentionMs: 60_000,
  playbackBaseUrl: 'http://127.0.0.1:1',
  producer,
  log
})
// What an earlier version's history writer left in the (then shared) store.
await mkdir(path.join(root, '.nms-store'), { recursive: true })
await writeFile(path.join(root, '.nms-store', 'stream_history.json'), JSON.stringify([{ id: 'old', streamPath: `/live/${KEY}`, name: KEY }]))
const media = createMediaServer({ config, auth, live, log })
await media.run()
const admin = `http://127.0.0.1:${adminPort}`
t.teardown(async () => {
  await live.endAll('node-shutdown')
  await media.stop()
  await producer.close(1_000)
  await dropRedisPrefix(queuePrefix)
  await client.close()
  await tdb.drop()
  await rm(root, { recursive: true, force: true })
})

/** A short FLV clip (H.264 + AAC), as an HTTP-FLV publisher would send it. */
async function flvClip(): Promise<Buffer> {
  const file = path.join(root, '..', `ls-ms-clip-${randomBytes(3).toString('hex')}.flv`)
  await run(FFMPEG, [
    '-hide_banner', '-loglevel', 'error', '-nostdin',
    '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=15', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-t', '3', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '15', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-f', 'flv', file
  ])
  const data = await readFile(file)
  await rm(file, { force: true })
  return data
}

async function scanFor(dir: string, needle: string): Promise<string[]> {
  const hits: string[] = []
  for (const entry of await readdir(dir, { recursive: true })) {
    const full = path.join(dir, entry)
    if (!(await stat(full)).isFile()) continue
    if (entry.includes(needle) || (await readFile(full)).includes(needle)) hits.push(entry)
  }
  return hits
}

t.test("node-media-server's history writer is off: a finished publish, accepted or refused, leaves no key on disk", async (t) => {
  t.same(await scanFor(root, KEY), [], "an earlier version's stored history is gone at start")
  t.equal(Context.eventEmitter.listenerCount('donePublish'), 0, 'nothing listens for donePublish')
  // What its broadcast server emits 30 s after a publisher leaves (PUBLISH_GRACE_MS, hard-coded): emitted here
  // directly rather than waited for.
  const now = Date.now()
  for (const [id, name] of [['s-accepted', KEY], ['s-refused', '00000000-0000-4000-8000-000000000000']] as const) {
    Context.eventEmitter.emit('donePublish', {
      id, protocol: 'rtmp', streamApp: 'live', streamName: name, streamPath: `/live/${name}`, ip: '127.0.0.1:50000',
      createTime: now - 5_000, endTime: now, inBytes: 1, outBytes: 1, playCount: 0
    })
  }
  await new Promise((r) => setTimeout(r, 800)) // the store flushes within 200 ms
  t.ok((await readdir(storePath(root, config.nodeId))).length >= 0, 'the store lives under MEDIA_ROOT/.nms-store/<node id>')
  t.same(await scanFor(root, KEY), [], 'no file under MEDIA_ROOT holds the key')
  t.same(await scanFor(root, '00000000-0000-4000-8000-000000000000'), [], 'nor the refused one')
})

t.test('the admin API is on, and answers only with credentials', async (t) => {
  t.equal((await fetch(`${admin}/api/v1/streams`)).status, 401, 'no token: 401')
  t.equal((await fetch(`${admin}/api/v1/streams`, { headers: { authorization: 'Bearer nope' } })).status, 401, 'a bad token: 401')
  const login = (password: string) =>
    fetch(`${admin}/api/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'operator', password }) })
  t.equal((await login('wrong')).status, 401, 'a wrong password: 401')
  const ok = await login('correct horse battery')
  t.equal(ok.status, 200, 'API_USER/API_PASS log in')
  const { data } = (await ok.json()) as { data: { token: string } }
  const res = await fetch(`${admin}/api/v1/streams`, { headers: { authorization: `Bearer ${data.token}` } })
  t.equal(res.status, 200, 'and the token opens the API')
})

t.test("the admin API refuses every token it did not issue, even one signed with SECRET itself", async (t) => {
  const now = Math.floor(Date.now() / 1000)
  // What the api issues ({ sub }), and a forgery shaped exactly like the admin login's own token ({ username }),
  // both signed with the value of SECRET: node-media-server checks only the signature.
  const forged = [
    createSigner({ key: SECRET, algorithm: 'HS256' })({ sub: '1', iat: now, exp: now + 600 }),
    createSigner({ key: SECRET, algorithm: 'HS256' })({ username: 'operator', iat: now, exp: now + 600 })
  ]
  for (const token of forged) {
    const res = await fetch(`${admin}/api/v1/streams`, { headers: { authorization: `Bearer ${token}` } })
    t.equal(res.status, 401, 'a token signed with SECRET: 401')
    const del = await fetch(`${admin}/api/v1/sessions/x`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })
    t.equal(del.status, 401, 'and it cannot cut a session')
  }
  const ok = await fetch(`${admin}/api/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'operator', password: 'correct horse battery' })
  })
  const { data } = (await ok.json()) as { data: { token: string } }
  t.equal((await fetch(`${admin}/api/v1/streams`, { headers: { authorization: `Bearer ${data.token}` } })).status, 200, "the admin login's own token works")
})

t.test('the admin port listens on ADMIN_HOST (loopback by default), not on HOST', async (t) => {
  const external = Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address
  if (!external) {
    t.comment('no non-loopback address on this machine: nothing to compare')
    return
  }
  const reach = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = net.connect(port, external)
      s.once('connect', () => (s.destroy(), resolve(true)))
      s.once('error', () => resolve(false))
    })
  t.equal(await reach(rtmpPort), true, `RTMP is reachable on ${external} (HOST=0.0.0.0)`)
  t.equal(await reach(adminPort), false, 'the admin API is not')
})

t.test('an HTTP-FLV publish with a valid key is cut off at once: no lookup, no packaging, no event', async (t) => {
  const clip = await flvClip()
  const before = { lookups, queued: producer.stats.queued }
  const started = Date.now()
  const req = http.request(`${admin}/live/${KEY}.flv`, { method: 'POST', headers: { 'transfer-encoding': 'chunked' } })
  req.on('error', () => {})
  req.on('response', (res) => res.resume())
  let sent = 0
  const feeder = setInterval(() => {
    if (req.destroyed || sent >= clip.length) return
    req.write(clip.subarray(sent, sent + 16_384))
    sent += 16_384
  }, 50)
  t.teardown(() => clearInterval(feeder))
  const socket = await new Promise<net.Socket>((r) => req.on('socket', r))
  const closed = await Promise.race([once(socket, 'close').then(() => true), new Promise((r) => setTimeout(() => r(false), 1_000))])
  clearInterval(feeder)
  req.destroy()
  t.ok(closed, `the server closed the connection (${Date.now() - started} ms)`)
  await new Promise((r) => setTimeout(r, 300))
  t.equal(lookups, before.lookups, 'the key was never even looked up')
  t.equal(live.size, 0, 'no stream held')
  t.equal(producer.stats.queued, before.queued, 'no event')
  t.same([...windows.values()], [], 'nothing packaged')
  t.match(logLines.join(''), /publish refused: only RTMP publishes/)
})

t.test('the path that HTTP-FLV publisher tried is not blocked: an RTMP publish of the key goes live', async (t) => {
  const clip = await flvClip()
  const file = path.join(root, '..', `ls-ms-pub-${randomBytes(3).toString('hex')}.flv`)
  await import('node:fs/promises').then((fs) => fs.writeFile(file, clip))
  const child = execFile(FFMPEG, ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', file, '-t', '8', '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${rtmpPort}/live/${KEY}`])
  t.teardown(async () => {
    if (child.exitCode === null) {
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
    await rm(file, { force: true })
  })
  const deadline = Date.now() + 8_000
  while (!windows.get(PLAYBACK)?.leader?.segments.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
  t.equal(live.size, 1, 'the RTMP publisher is live')
  t.same([...(windows.get(PLAYBACK)?.tracks.keys() ?? [])].sort(), ['audio', 'video'], 'and packaged in process, both tracks')
})

t.test('HTTP-FLV play of a live key is refused: no media reaches the player', async (t) => {
  const res = await new Promise<{ bytes: number }>((resolve) => {
    const req = http.get(`${admin}/live/${KEY}.flv`, (r) => {
      let bytes = 0
      r.on('data', (d: Buffer) => (bytes += d.length))
      r.on('close', () => resolve({ bytes }))
      r.on('error', () => resolve({ bytes }))
    })
    req.on('error', () => resolve({ bytes: 0 }))
    setTimeout(() => req.destroy(), 3_000)
  })
  t.equal(res.bytes, 0, 'not a byte of FLV')
})

t.test('a WebSocket-FLV connection, even with a stream name node-media-server throws on, is closed and ingest lives', async (t) => {
  for (const p of [`/live/${KEY}.flv`, '/live/bad%20name.flv']) {
    const s = net.connect(adminPort, '127.0.0.1')
    s.on('error', () => {})
    await once(s, 'connect')
    s.write(
      `GET ${p} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: post\r\n\r\n'
    )
    s.resume()
    const closed = await Promise.race([new Promise((r) => s.on('close', () => r(true))), new Promise((r) => setTimeout(() => r(false), 3_000))])
    s.destroy()
    t.ok(closed, `closed: ${p}`)
  }
  t.equal((await fetch(`${admin}/api/v1/health`)).status, 200, 'the admin API still answers')
})

t.test('a client that never finishes its headers on the admin port is cut off by the configured timeout', async (t) => {
  const s = net.connect(adminPort, '127.0.0.1')
  s.on('error', () => {})
  await once(s, 'connect')
  s.write('GET /api/v1/health HTTP/1.1\r\nHost: x\r\n')
  const started = Date.now()
  const timer = setInterval(() => s.write('X-Slow: 1\r\n'), 200)
  s.resume()
  await new Promise((r) => s.on('close', r))
  clearInterval(timer)
  t.ok(Date.now() - started < 5_000, `closed after ${Date.now() - started} ms`)
})

t.test('no log line carries the key', async (t) => {
  t.ok(logLines.length > 0)
  t.notMatch(logLines.join(''), KEY)
})
