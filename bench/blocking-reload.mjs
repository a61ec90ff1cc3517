// LL-HLS blocking playlist reload under load: 20 streams x 100 viewers hold `video.m3u8?_HLS_msn=..&_HLS_part=..` on
// one media HTTP server (its own process, built ingest from apps/ingest/dist), then every stream gets its next part.
// Prints how long after the part was written the 1st, median and last (2,000th) viewer had its playlist.
// Target: the last within a part duration (HLS_PART_SECONDS, 330 ms).
// Run: pnpm --filter @livestream/ingest build && node bench/blocking-reload.mjs [streams] [viewers]
import { fork } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import os from 'node:os'
import { fileURLToPath } from 'node:url'

const STREAMS = Number(process.argv[2] === 'server' ? 0 : (process.argv[2] ?? 20))
const VIEWERS = Number(process.argv[2] === 'server' ? 0 : (process.argv[3] ?? 100))
const now = () => performance.timeOrigin + performance.now()

if (process.argv[2] === 'server') {
  const dist = new URL('../apps/ingest/dist/', import.meta.url)
  const { MediaWindow, MediaWindows } = await import(new URL('media/window.js', dist).href)
  const { createMediaHttp } = await import(new URL('media-http.js', dist).href)
  const streams = Number(process.argv[3])
  const windows = new MediaWindows()
  const part = (track, bytes) => track.addPart({ duration: 0.33, independent: true, bytes: Buffer.alloc(bytes, 1) })
  for (let i = 0; i < streams; i++) {
    const w = new MediaWindow(`s${i}`, 2, 0.33, 6)
    w.startedAt = Date.now()
    for (const [kind, info] of [['video', { kind: 'video', codec: 'avc1.64001f', timescale: 90_000, width: 1280, height: 720 }], ['audio', { kind: 'audio', codec: 'mp4a.40.2', timescale: 48_000, channels: 2 }]]) {
      const t = w.track(kind)
      t.setInit(0, info, Buffer.alloc(600, 2))
      for (let msn = 0; msn < 7; msn++) {
        t.openSegment({ msn, baseMediaDecodeTime: msn * 2 * info.timescale, programDateTime: Date.now() - (7 - msn) * 2000, discontinuity: false, initVersion: 0 })
        for (let p = 0; p < (msn < 6 ? 6 : 2); p++) part(t, kind === 'video' ? 40_000 : 2_000)
        if (msn < 6) t.closeSegment()
      }
    }
    windows.set(w)
  }
  const server = createMediaHttp({
    windows, host: '127.0.0.1', port: 0, requestTimeout: 30_000, headersTimeout: 30_000,
    health: () => ({ ok: true, detail: {} }), ready: () => ({ ok: true, detail: {} }), metrics: () => '', log: { error: (o) => console.error(o) }
  })
  // Server side: when the last held answer was handed to the socket.
  let finished = 0
  let cpuAtPart
  server.on('request', (_req, res) => res.on('finish', () => {
    if (++finished === streams * Number(process.argv[4])) process.send({ lastFinish: now(), cpuMs: (() => { const u = process.cpuUsage(cpuAtPart); return (u.user + u.system) / 1000 })() })
  }))
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }))
  process.on('message', () => {
    const at = now()
    cpuAtPart = process.cpuUsage()
    for (const w of windows.values()) part(w.track('video'), 40_000)
    process.send({ at })
  })
} else {
  const child = fork(fileURLToPath(import.meta.url), ['server', String(STREAMS), String(VIEWERS)], { stdio: 'inherit' })
  const [{ port }] = await once(child, 'message')
  const answeredAt = []
  const sockets = []
  for (let i = 0; i < STREAMS * VIEWERS; i++) {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => s.write(`GET /hls/s${i % STREAMS}/video.m3u8?_HLS_msn=6&_HLS_part=2 HTTP/1.1\r\nHost: x\r\n\r\n`))
    s.once('data', (d) => answeredAt.push([now(), d.toString('latin1', 0, 12)]))
    s.on('error', () => {})
    sockets.push(s)
    if (i % 200 === 199) await new Promise((r) => setTimeout(r, 20))
  }
  await new Promise((r) => setTimeout(r, 2_000))
  const early = answeredAt.length
  child.send('part')
  const [{ at }] = await once(child, 'message')
  const [{ lastFinish, cpuMs }] = await once(child, 'message')
  while (answeredAt.length < STREAMS * VIEWERS) await new Promise((r) => setTimeout(r, 10))
  const ms = answeredAt.map(([t]) => t - at).sort((a, b) => a - b)
  const ok = answeredAt.filter(([, head]) => head === 'HTTP/1.1 200').length
  console.log(JSON.stringify({
    streams: STREAMS, viewers: VIEWERS, heldBeforePart: STREAMS * VIEWERS - early, ok,
    firstMs: +ms[0].toFixed(1), medianMs: +ms[ms.length >> 1].toFixed(1), lastMs: +ms.at(-1).toFixed(1),
    serverLastMs: +(lastFinish - at).toFixed(1), serverCpuMs: +cpuMs.toFixed(1), load: os.loadavg()[0]
  }))
  for (const s of sockets) s.destroy()
  child.kill()
}
