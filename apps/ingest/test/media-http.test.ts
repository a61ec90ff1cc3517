import t from 'tap'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { once } from 'node:events'
import net, { type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pino from 'pino'
import { createMediaHttp } from '../src/media-http.js'

const root = await mkdtemp(path.join(tmpdir(), 'ls-media-http-'))
await mkdir(path.join(root, 'hls', 'pb1'), { recursive: true })
await mkdir(path.join(root, 'dash', 'pb1'), { recursive: true })
await writeFile(path.join(root, 'hls', 'pb1', 'index.m3u8'), '#EXTM3U\n')
await writeFile(path.join(root, 'hls', 'pb1', 'seg_000001.ts'), Buffer.alloc(188))
await writeFile(path.join(root, 'dash', 'pb1', 'index.mpd'), '<MPD/>')
await writeFile(path.join(root, 'dash', 'pb1', 'chunk-0-000001.m4s'), Buffer.alloc(10))
await writeFile(path.join(root, 'secret.txt'), 'do not serve')

const serve = () =>
  createMediaHttp({
    mediaRoot: root,
    host: '127.0.0.1',
    port: 0,
    requestTimeout: 2_000,
    headersTimeout: 1_000,
    health: () => ({ ok: true, detail: {} }),
    metrics: () => 'm 1\n',
    log: pino({ level: 'silent' })
  })
const server = serve()
server.listen(0, '127.0.0.1')
await once(server, 'listening')
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
t.teardown(async () => {
  server.closeAllConnections()
  await new Promise((r) => server.close(r))
  await rm(root, { recursive: true, force: true })
})

t.test('playlists and manifests: right types, CORS, not cached', async (t) => {
  const m3u8 = await fetch(`${base}/hls/pb1/index.m3u8`)
  t.equal(m3u8.status, 200)
  t.equal(m3u8.headers.get('content-type'), 'application/vnd.apple.mpegurl')
  t.equal(m3u8.headers.get('cache-control'), 'no-cache')
  t.equal(m3u8.headers.get('access-control-allow-origin'), '*')
  t.equal(m3u8.headers.get('x-content-type-options'), 'nosniff')
  const mpd = await fetch(`${base}/dash/pb1/index.mpd`)
  t.equal(mpd.headers.get('content-type'), 'application/dash+xml')
})

t.test('segments are cacheable', async (t) => {
  const ts = await fetch(`${base}/hls/pb1/seg_000001.ts`)
  t.equal(ts.headers.get('content-type'), 'video/mp2t')
  t.match(ts.headers.get('cache-control'), /max-age=\d+/)
  t.equal((await ts.arrayBuffer()).byteLength, 188)
  const m4s = await fetch(`${base}/dash/pb1/chunk-0-000001.m4s`)
  t.equal(m4s.headers.get('content-type'), 'video/iso.segment')
})

t.test('a CORS preflight is answered', async (t) => {
  const res = await fetch(`${base}/hls/pb1/index.m3u8`, { method: 'OPTIONS' })
  t.equal(res.status, 204)
  t.match(res.headers.get('access-control-allow-methods'), /GET/)
})

t.test('nothing outside the media folders is served, however the path is written', async (t) => {
  for (const p of ['/secret.txt', '/hls/../secret.txt', '/hls/pb1/../../secret.txt', '/hls/%2e%2e/secret.txt', '/hls/pb1/%2e%2e%2f%2e%2e%2fsecret.txt', '/hls/pb1/index.m3u8%00.txt', '/hls/pb1/other.txt', '/hls/pb1']) {
    const res = await fetch(`${base}${p}`)
    t.equal(res.status, 404, p)
    t.notMatch(await res.text(), /do not serve/)
  }
})

t.test('only GET and HEAD', async (t) => {
  t.equal((await fetch(`${base}/hls/pb1/index.m3u8`, { method: 'POST' })).status, 405)
  const head = await fetch(`${base}/hls/pb1/seg_000001.ts`, { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(head.headers.get('content-length'), '188')
})

t.test('a client that never finishes its headers is cut off by the configured timeout', async (t) => {
  // A server of its own, with no other client's connections around.
  const slow = serve()
  slow.listen(0, '127.0.0.1')
  await once(slow, 'listening')
  t.teardown(() => new Promise((r) => slow.close(r)))
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
  t.match(answer, /^HTTP\/1\.1 4\d\d/, 'answered with a client error')
  t.ok(Date.now() - started < 15_000, `closed after ${Date.now() - started} ms`)
})
