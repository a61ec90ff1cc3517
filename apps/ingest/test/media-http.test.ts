import t from 'tap'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import http2 from 'node:http2'
import https from 'node:https'
import net, { type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import pino from 'pino'
import { parse, type types } from 'hls-parser'
import { closeMediaHttp, createMediaHttp, type MediaHttpOptions } from '../src/media-http.js'
import { MediaWindows } from '../src/media/window.js'
import { addFakePart, fakeWindow, writeSegment } from './helper.js'

const windows = new MediaWindows()
const w = fakeWindow({ id: 'pb1' })
windows.set(w)
for (let i = 0; i < 3; i++) writeSegment(w)
// Segment 3 is being written: two parts so far.
writeSegment(w, { complete: false, parts: 2 })
const video = w.track('video')

let ready = true
const serve = (extra: Partial<MediaHttpOptions> = {}) =>
  createMediaHttp({
    windows,
    host: '127.0.0.1',
    port: 0,
    requestTimeout: 2_000,
    headersTimeout: 1_000,
    health: () => ({ ok: true, detail: { nodeId: 'n1' } }),
    ready: () => ({ ok: ready, detail: { draining: !ready } }),
    metrics: () => 'm 1\n',
    log: pino({ level: 'silent' }),
    maxHoldMs: 1_500,
    ...extra
  })
const server = serve()
server.listen(0, '127.0.0.1')
await once(server, 'listening')
const port = (server.address() as AddressInfo).port
const base = `http://127.0.0.1:${port}`
t.teardown(() => closeMediaHttp(server))

/** Sends raw bytes and reads the answer until the server closes the connection. */
async function raw(text: string | Buffer, p = port): Promise<string> {
  const socket = net.connect(p, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(text)
  let answer = ''
  socket.on('data', (d: Buffer) => (answer += d.toString()))
  await once(socket, 'close')
  return answer
}

const bytesOf = (msn: number, kind: 'video' | 'audio' = 'video') => Buffer.concat((w.track(kind).segment(msn)?.parts ?? []).map((p) => p.bytes))

function securityHeaders(t: Pick<typeof import('tap').default, 'equal'>, res: Response) {
  t.equal(res.headers.get('x-content-type-options'), 'nosniff')
  t.equal(res.headers.get('x-frame-options'), 'DENY')
  t.equal(res.headers.get('referrer-policy'), 'no-referrer')
  t.equal(res.headers.get('access-control-allow-origin'), '*')
}

t.test('the playback URL serves the multivariant playlist, short-cached, with CORS and security headers', async (t) => {
  const res = await fetch(`${base}/hls/pb1/index.m3u8`)
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'application/vnd.apple.mpegurl')
  t.equal(res.headers.get('cache-control'), 'public, max-age=1')
  securityHeaders(t, res)
  const p = parse(await res.text()) as types.MasterPlaylist
  t.equal(p.variants[0]?.uri, 'video.m3u8')
})

t.test('media playlists and the MPD are served from the window', async (t) => {
  const pl = await fetch(`${base}/hls/pb1/audio.m3u8`)
  t.equal(pl.status, 200)
  t.match(await pl.text(), /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="a\/3\.2\.m4s"/)
  const mpd = await fetch(`${base}/dash/pb1/index.mpd`)
  t.equal(mpd.status, 200)
  t.equal(mpd.headers.get('content-type'), 'application/dash+xml')
  t.equal(mpd.headers.get('cache-control'), 'public, max-age=1')
  t.match(await mpd.text(), /<MPD [^>]*type="dynamic"/)
})

t.test('inits, parts and segments are immutable and cacheable; a segment is its parts joined', async (t) => {
  const init = await fetch(`${base}/hls/pb1/v/init-0.mp4`)
  t.equal(init.status, 200)
  t.equal(init.headers.get('content-type'), 'video/mp4')
  t.equal(Buffer.from(await init.arrayBuffer()).toString(), 'video-init-0')
  const part = await fetch(`${base}/hls/pb1/a/1.2.m4s`)
  t.equal(part.headers.get('content-type'), 'audio/iso.segment')
  t.match(part.headers.get('cache-control'), /^public, max-age=\d+, immutable$/)
  t.same(Buffer.from(await part.arrayBuffer()), w.track('audio').part(1, 2)?.bytes)
  const seg = await fetch(`${base}/hls/pb1/v/1.m4s`)
  t.equal(seg.headers.get('content-type'), 'video/iso.segment')
  t.match(seg.headers.get('cache-control'), /immutable/)
  t.equal(seg.headers.get('content-length'), '4000')
  t.same(Buffer.from(await seg.arrayBuffer()), bytesOf(1))
  securityHeaders(t, seg)
})

t.test('HEAD answers the headers of GET without a body', async (t) => {
  const res = await fetch(`${base}/hls/pb1/v/0.m4s`, { method: 'HEAD' })
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-length'), '4000')
  t.equal((await res.arrayBuffer()).byteLength, 0)
  const pl = await fetch(`${base}/hls/pb1/video.m3u8`, { method: 'HEAD' })
  t.equal(pl.status, 200)
  t.ok(Number(pl.headers.get('content-length')) > 100)
})

t.test('a CORS preflight is answered', async (t) => {
  const res = await fetch(`${base}/hls/pb1/index.m3u8`, { method: 'OPTIONS' })
  t.equal(res.status, 204)
  t.match(res.headers.get('access-control-allow-methods'), /GET/)
  t.equal(res.headers.get('x-content-type-options'), 'nosniff')
})

t.test('anything else is a 404 envelope that does not echo the path', async (t) => {
  const paths = [
    '/hls/nope/index.m3u8', // no such stream
    '/hls/pb1/v/init-7.mp4', // no such init
    '/hls/pb1/v/9.m4s', // far ahead of the window
    '/hls/pb1/v/3.5.m4s', // a part that is not the next one
    '/hls/pb1/x/1.m4s',
    '/hls/pb1/../secret.txt',
    '/hls/%2e%2e/index.m3u8',
    '/hls/pb1/index.m3u8%00.txt',
    '/hls/pb1',
    '//hls/pb1/index.m3u8',
    '/dash/pb1/other.mpd'
  ]
  for (const p of paths) {
    const res = await fetch(`${base}${p}`)
    t.equal(res.status, 404, p)
    t.equal(res.headers.get('content-type'), 'application/json')
    t.equal(res.headers.get('cache-control'), 'no-store')
    const body = await res.text()
    t.same(JSON.parse(body), { success: false, data: null, message: 'not found' })
  }
})

t.test('a segment that slid out of the window is gone', async (t) => {
  const small = fakeWindow({ id: 'slide', keep: 3 })
  windows.set(small)
  t.teardown(() => windows.delete('slide'))
  for (let i = 0; i < 6; i++) writeSegment(small)
  t.equal((await fetch(`${base}/hls/slide/v/0.m4s`)).status, 404)
  t.equal((await fetch(`${base}/hls/slide/v/0.1.m4s`)).status, 404)
  t.equal((await fetch(`${base}/hls/slide/v/5.m4s`)).status, 200)
})

t.test('only GET, HEAD and OPTIONS', async (t) => {
  const res = await fetch(`${base}/hls/pb1/index.m3u8`, { method: 'POST' })
  t.equal(res.status, 405)
  t.equal(res.headers.get('allow'), 'GET, HEAD, OPTIONS')
  t.same(await res.json(), { success: false, data: null, message: 'method not allowed' })
})

t.test('health, readiness, metrics and the clock', async (t) => {
  const health = await fetch(`${base}/healthz`)
  t.same(await health.json(), { success: true, data: { nodeId: 'n1' }, message: 'alive' })
  t.same(await (await fetch(`${base}/readyz`)).json(), { success: true, data: { draining: false }, message: 'ready' })
  ready = false
  t.teardown(() => (ready = true))
  const notReady = await fetch(`${base}/readyz`)
  t.equal(notReady.status, 503)
  t.same(await notReady.json(), { success: false, data: { draining: true }, message: 'draining: send new publishes and viewers elsewhere' })
  t.equal(await (await fetch(`${base}/metrics`)).text(), 'm 1\n')
  const time = await fetch(`${base}/time`)
  t.equal(time.headers.get('cache-control'), 'no-store')
  t.ok(Math.abs(Date.parse(await time.text()) - Date.now()) < 5_000)
})

t.test('a blocking playlist reload is held until the part exists', async (t) => {
  const held = fetch(`${base}/hls/pb1/video.m3u8?_HLS_msn=3&_HLS_part=2`)
  let answered = false
  void held.then(() => (answered = true))
  await new Promise((r) => setTimeout(r, 100))
  t.equal(answered, false, 'held')
  addFakePart(video, 3)
  const res = await held
  t.equal(res.status, 200)
  const text = await res.text()
  t.match(text, /URI="v\/3\.2\.m4s",INDEPENDENT=YES/)
  t.match(text, /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="v\/3\.3\.m4s"/)
  const now = await fetch(`${base}/hls/pb1/video.m3u8?_HLS_msn=2&_HLS_part=0`)
  t.equal(now.status, 200, 'a part already there: answered at once')
})

t.test('blocking reload rules: 400 for a part without msn or an msn too far ahead, 503 past the hold', async (t) => {
  const noMsn = await fetch(`${base}/hls/pb1/video.m3u8?_HLS_part=1`)
  t.equal(noMsn.status, 400)
  t.match(await noMsn.json(), { success: false, message: /_HLS_msn/ })
  // The last complete segment is 2: 5 is three ahead.
  t.equal((await fetch(`${base}/hls/pb1/video.m3u8?_HLS_msn=5`)).status, 400)
  const started = Date.now()
  const late = await fetch(`${base}/hls/pb1/video.m3u8?_HLS_msn=4&_HLS_part=3`)
  t.equal(late.status, 503)
  t.ok(Date.now() - started >= 1_400, 'held for the whole hold first')
  t.equal(late.headers.get('cache-control'), 'no-store')
})

t.test('a delta update over HTTP', async (t) => {
  const res = await fetch(`${base}/hls/pb1/video.m3u8?_HLS_skip=YES`)
  t.equal(res.status, 200)
  t.match(await res.text(), /#EXT-X-MEDIA-SEQUENCE:0/)
})

t.test('the preload-hinted part is held until written, then sent', async (t) => {
  const last = video.segments.at(-1)
  const next = `${last?.msn}.${last?.parts.length}`
  const held = fetch(`${base}/hls/pb1/v/${next}.m4s`)
  await new Promise((r) => setTimeout(r, 100))
  addFakePart(video, last?.msn as number, 0.5, 777)
  const res = await held
  t.equal(res.status, 200)
  t.equal((await res.arrayBuffer()).byteLength, 777)
  t.match(res.headers.get('cache-control'), /immutable/)
})

t.test('a segment still being written goes out chunked, each part as it completes', async (t) => {
  const msn = video.segments.at(-1)?.msn as number
  const res = await fetch(`${base}/hls/pb1/v/${msn}.m4s`)
  t.equal(res.status, 200)
  t.equal(res.headers.get('transfer-encoding'), 'chunked')
  t.equal(res.headers.get('content-length'), null)
  const reader = (res.body as ReadableStream<Uint8Array>).getReader()
  let got = Buffer.alloc(0)
  const sofar = bytesOf(msn).length
  while (got.length < sofar) got = Buffer.concat([got, (await reader.read()).value as Uint8Array])
  t.equal(got.length, sofar, 'the parts written so far come at once')
  addFakePart(video, msn, 0.5, 123)
  video.closeSegment()
  for (;;) {
    const { value, done } = await reader.read()
    if (done) break
    got = Buffer.concat([got, value])
  }
  t.same(got, bytesOf(msn), 'the whole segment, in order, then the answer ends')
})

t.test('a segment asked a moment before it opens is held for its first part', async (t) => {
  const msn = (video.segments.at(-1)?.msn as number) + 1
  const held = fetch(`${base}/hls/pb1/v/${msn}.m4s`)
  await new Promise((r) => setTimeout(r, 100))
  video.openSegment({ msn, baseMediaDecodeTime: 0, programDateTime: Date.now(), discontinuity: false, initVersion: 0 })
  addFakePart(video, msn)
  video.closeSegment()
  const res = await held
  t.equal(res.status, 200)
  t.same(Buffer.from(await res.arrayBuffer()), bytesOf(msn))
})

t.test('a request target over 2 KB is refused with 414 in the envelope', async (t) => {
  const res = await fetch(`${base}/hls/pb1/${'a'.repeat(3_000)}.m3u8`)
  t.equal(res.status, 414)
  securityHeaders(t, res)
  const body = await res.text()
  t.same(JSON.parse(body), { success: false, data: null, message: 'uri too long' })
})

t.test('errors of Node\'s own parser are answered in the envelope with the security headers', async (t) => {
  const huge = await raw(`GET /hls/pb1/index.m3u8 HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`)
  t.match(huge, /^HTTP\/1\.1 431 /)
  t.match(huge, /\r\nx-content-type-options: nosniff\r\n/)
  t.match(huge, /\r\n\r\n\{"success":false,"data":null,"message":"request header fields too large"\}$/)
  const garbage = await raw('GET /hls/pb1/<script> NOT-HTTP\r\n\r\n')
  t.match(garbage, /^HTTP\/1\.1 400 /)
  t.match(garbage, /"message":"bad request"/)
  t.notMatch(garbage, /script/)
  const longUrl = await raw(`GET /${'x'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`)
  t.match(longUrl, /^HTTP\/1\.1 431 /, 'a request line past the header limit')
  t.notMatch(longUrl, /xxxx/)
})

t.test('a client that never finishes its headers is cut off by the configured timeout', async (t) => {
  // A server of its own, with no other client's connections around.
  const slow = serve()
  slow.listen(0, '127.0.0.1')
  await once(slow, 'listening')
  t.teardown(() => closeMediaHttp(slow))
  const socket = net.connect((slow.address() as AddressInfo).port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write('GET /hls/pb1/index.m3u8 HTTP/1.1\r\nHost: x\r\n')
  const started = Date.now()
  const timer = setInterval(() => socket.write('X-Slow: 1\r\n'), 200)
  let answer = ''
  socket.on('data', (d: Buffer) => (answer += d.toString()))
  await once(socket, 'close')
  clearInterval(timer)
  t.match(answer, /^HTTP\/1\.1 408 /, 'answered with a client error')
  t.match(answer, /"message":"request timeout"/)
  t.ok(Date.now() - started < 15_000, `closed after ${Date.now() - started} ms`)
})

const hasOpenssl = await promisify(execFile)('openssl', ['version']).then(
  () => true,
  () => false
)

t.test('with a certificate, HTTP/2 over TLS, and HTTP/1.1 on the same port', { skip: hasOpenssl ? false : 'no openssl to make a certificate' }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'ls-media-tls-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const [key, cert] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')]
  await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', key, '-out', cert])
  const tlsServer = serve({ tls: { cert: await readFile(cert), key: await readFile(key) } })
  tlsServer.listen(0, '127.0.0.1')
  await once(tlsServer, 'listening')
  t.teardown(() => closeMediaHttp(tlsServer))
  const tlsPort = (tlsServer.address() as AddressInfo).port

  const session = http2.connect(`https://127.0.0.1:${tlsPort}`, { rejectUnauthorized: false })
  t.teardown(() => session.close())
  const stream = session.request({ ':path': '/hls/pb1/index.m3u8' })
  const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders]
  let body = ''
  stream.setEncoding('utf8')
  stream.on('data', (d: string) => (body += d))
  await once(stream, 'end')
  t.equal(headers[':status'], 200)
  t.equal(headers['x-content-type-options'], 'nosniff')
  t.match(body, /#EXT-X-STREAM-INF/)

  const h1 = await new Promise<number>((resolve, reject) =>
    https.get(`https://127.0.0.1:${tlsPort}/healthz`, { rejectUnauthorized: false }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    }).on('error', reject)
  )
  t.equal(h1, 200)
})
