import t from 'tap'
import type http from 'node:http'
import { parseMediaPath, type MediaRoute } from '../../src/media/media-paths.js'
import { MediaRoutes } from '../../src/media/media-routes.js'
import { MediaWindows } from '../../src/media/window.js'
import { addFakePart, fakeWindow, writeSegment } from '../helper.js'

/** A response that records what it was given: the route layer without sockets, to measure its own cost. */
function recorder(onEnd: (status: number, body: unknown) => void): http.ServerResponse {
  let status = 0
  return {
    headersSent: false,
    writeHead(s: number) {
      status = s
      return this
    },
    end(body?: unknown) {
      onEnd(status, body)
      return this
    },
    on() {
      return this
    },
    write() {
      return true
    },
    destroy() {}
  } as unknown as http.ServerResponse
}

t.test('the URL scheme: one name per set of bytes, nothing else matches', async (t) => {
  t.same(parseMediaPath('/hls/pb1/index.m3u8'), { type: 'multivariant', id: 'pb1' })
  t.same(parseMediaPath('/hls/pb1/video.m3u8'), { type: 'playlist', id: 'pb1', kind: 'video' })
  t.same(parseMediaPath('/hls/pb1/a/init-2.mp4'), { type: 'init', id: 'pb1', kind: 'audio', version: 2 })
  t.same(parseMediaPath('/hls/pb1/v/17.m4s'), { type: 'segment', id: 'pb1', kind: 'video', msn: 17 })
  t.same(parseMediaPath('/hls/pb1/v/17.3.m4s'), { type: 'part', id: 'pb1', kind: 'video', msn: 17, part: 3 })
  t.same(parseMediaPath('/dash/pb1/index.mpd'), { type: 'mpd', id: 'pb1' })
  for (const p of ['/hls/pb1/v/17.m4s/', '/hls/pb1/v/-1.m4s', '/hls/pb1/v/1.2.3.m4s', '/hls/p.b/index.m3u8', '/hls/pb1/subtitles.m3u8', '/dash/pb1/v/1.m4s']) {
    t.equal(parseMediaPath(p), null, p)
  }
})

t.test('2,000 held playlist requests over 20 streams are all answered within a part duration, from one rendering each', async (t) => {
  const windows = new MediaWindows()
  const routes = new MediaRoutes({ windows })
  const streams = 20
  const viewers = 100
  for (let i = 0; i < streams; i++) {
    const w = fakeWindow({ id: `s${i}`, partTarget: 0.33, keep: 6 })
    windows.set(w)
    for (let s = 0; s < 6; s++) writeSegment(w, { parts: 6, partDuration: 0.33 })
    writeSegment(w, { complete: false, parts: 2, partDuration: 0.33 })
  }
  const bodies = new Map<string, Set<unknown>>()
  let answered = 0
  let ok = 0
  let lastAt = 0
  const all: Array<Promise<unknown>> = []
  for (let v = 0; v < viewers; v++) {
    for (let i = 0; i < streams; i++) {
      const route = parseMediaPath(`/hls/s${i}/video.m3u8`) as MediaRoute
      const res = recorder((status, body) => {
        if (status === 200) ok++
        let set = bodies.get(route.id)
        if (!set) bodies.set(route.id, (set = new Set()))
        set.add(body)
        answered++
        lastAt = performance.now()
      })
      all.push(routes.serve(route, new URLSearchParams('_HLS_msn=6&_HLS_part=2'), res, {}, false, (s) => t.fail(`answered ${s}`)))
    }
  }
  await new Promise((r) => setImmediate(r))
  t.equal(answered, 0, 'all held')
  const start = performance.now()
  for (const w of windows.values()) addFakePart(w.track('video'), 6, 0.33)
  await Promise.all(all)
  const took = lastAt - start
  t.equal(answered, streams * viewers)
  t.equal(ok, streams * viewers, 'all with 200')
  t.ok(took < 330, `the 2,000th answered ${took.toFixed(1)} ms after the parts were written`)
  t.same([...bodies.values()].map((s) => s.size), Array(streams).fill(1), 'one playlist buffer per stream, shared by its viewers')
})

t.test('a media playlist waits for the first segment to complete: hls.js gives up on one with parts and no EXTINF', async (t) => {
  const windows = new MediaWindows()
  const routes = new MediaRoutes({ windows })
  // A long GOP: the first segment is still open after several parts.
  const w = fakeWindow({ id: 'gop', audio: false, segmentTarget: 1, partTarget: 0.25 })
  windows.set(w)
  writeSegment(w, { complete: false, parts: 4, partDuration: 0.25 })
  const route = parseMediaPath('/hls/gop/video.m3u8') as MediaRoute
  let answer: { status: number; body: unknown } | null = null
  const served = routes.serve(route, new URLSearchParams(), recorder((status, body) => (answer = { status, body })), {}, false, (s) => t.fail(`answered ${s}`))
  await new Promise((r) => setTimeout(r, 20))
  t.equal(answer, null, 'held while the first segment is open')
  writeSegment(w, { complete: false, parts: 1, partDuration: 0.25 })
  await served
  const done = answer as { status: number; body: unknown } | null
  t.equal(done?.status, 200)
  t.match(String(done?.body), /#EXTINF:1,\nv\/0\.m4s/, 'answered with the first segment complete')
})

t.test('the wait for the first segment is bounded: 503, which hls.js retries', async (t) => {
  const windows = new MediaWindows()
  const routes = new MediaRoutes({ windows, maxHoldMs: 30 })
  const w = fakeWindow({ id: 'gop', audio: false })
  windows.set(w)
  writeSegment(w, { complete: false, parts: 2 })
  let failed = 0
  await routes.serve(parseMediaPath('/hls/gop/video.m3u8') as MediaRoute, new URLSearchParams(), recorder(() => t.fail('answered')), {}, false, (s) => (failed = s))
  t.equal(failed, 503)
})
