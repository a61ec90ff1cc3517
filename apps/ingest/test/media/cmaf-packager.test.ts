import t from 'tap'
import { UnsupportedMediaError } from '../../src/media/cmaf-packager.js'
import type { MediaWindow, TrackKind } from '../../src/media/window.js'
import { partSamples } from './helpers/boxes.js'
import { tag } from './helpers/flv-file.js'
import { newPackager } from './helpers/package.js'
import { capturedLogger } from '../helper.js'

// Hand-made FLV tags for what real encoders rarely produce on demand. Real ffmpeg media: cmaf-ffprobe.test.ts.
const AVCC = Buffer.from('0142c00dffe100166742c00dda0507ec0440000003004000000c83c50aa801000468ce0fc8', 'hex')
const AVCC_SMALL = Buffer.from('0142c00dffe100196742c00dda05421e22230110000003001000000303c0f142aa01000468ce0fc8', 'hex') // 322x242
const ASC_48K = Buffer.from('1190', 'hex')
const ASC_44K = Buffer.from('1210', 'hex')

type P = ReturnType<typeof newPackager>['packager']

/** Video frames at `fps` from `fromMs` for `seconds`, a keyframe every `gop` frames; audio frames (48 kHz) between. */
function feed(p: P, o: { fromMs?: number; seconds: number; fps?: number; gop?: number; audio?: boolean; video?: boolean; frameIndex?: number }): void {
  const fps = o.fps ?? 25
  const from = o.fromMs ?? 0
  const frames: { dts: number; v: boolean }[] = []
  if (o.video !== false) for (let i = 0; i < o.seconds * fps; i++) frames.push({ dts: from + Math.round((i * 1000) / fps), v: true })
  if (o.audio) for (let i = 0; (i * 1024 * 1000) / 48000 < o.seconds * 1000; i++) frames.push({ dts: from + Math.round((i * 1024 * 1000) / 48000), v: false })
  frames.sort((a, b) => a.dts - b.dts || (a.v ? -1 : 1))
  let n = o.frameIndex ?? 0
  for (const f of frames) {
    if (f.v) p.push(tag.video({ key: n++ % (o.gop ?? fps) === 0, dts: f.dts }))
    else p.push(tag.audio({ dts: f.dts }))
  }
}

function start(p: P, o: { audio?: boolean; video?: boolean } = {}): void {
  if (o.video !== false) p.push(tag.videoConfig(AVCC))
  if (o.audio) p.push(tag.audioConfig(ASC_48K))
}

const samplesOf = (w: MediaWindow, kind: TrackKind) => w.track(kind).segments.flatMap((s) => s.parts.flatMap((p) => partSamples(p.bytes)))

t.test('both sequence headers: both tracks at once, video leading', async (t) => {
  const { window, packager } = newPackager()
  start(packager, { audio: true })
  packager.push(tag.video({ key: true, dts: 0 }))
  t.same(packager.tracks, ['video', 'audio'])
  t.same([...window.tracks.keys()], ['video', 'audio'])
})

t.test('video without an audio header for a part: video only, and an audio header later does not add a track', async (t) => {
  const { window, packager } = newPackager({ partSeconds: 0.2 })
  start(packager)
  feed(packager, { seconds: 0.16 })
  t.same(packager.tracks, [], 'still waiting for audio after 160 ms')
  feed(packager, { fromMs: 160, seconds: 0.2, frameIndex: 4 })
  t.same(packager.tracks, ['video'])
  packager.push(tag.audioConfig(ASC_48K, 400))
  packager.push(tag.audio({ dts: 400 }))
  packager.end()
  t.same([...window.tracks.keys()], ['video'])
})

t.test('audio without a video header for a part: audio only; a late video header is ignored', async (t) => {
  const { window, packager } = newPackager()
  start(packager, { video: false, audio: true })
  feed(packager, { seconds: 3, video: false, audio: true })
  packager.push(tag.videoConfig(AVCC, 3000))
  packager.push(tag.video({ key: true, dts: 3000 }))
  packager.end()
  t.same([...window.tracks.keys()], ['audio'])
  t.same(window.track('audio').segments.map((s) => s.msn), [0, 1])
})

t.test('a part is written as soon as it is full: when the frame after it arrives', async (t) => {
  const { window, packager } = newPackager({ partSeconds: 0.2 })
  start(packager)
  feed(packager, { seconds: 0.2 }) // frames at 0..160 ms
  const parts = () => window.track('video').segments.flatMap((s) => s.parts)
  t.equal(parts().length, 0, 'the 5th frame (160 ms) has no duration yet')
  packager.push(tag.video({ key: false, dts: 200 }))
  t.same(parts().map((p) => [p.duration, p.independent]), [[0.2, true]])
  feed(packager, { fromMs: 240, seconds: 0.2, frameIndex: 6 })
  t.same(parts().map((p) => [p.duration, p.independent]), [[0.2, true], [0.2, false]])
})

t.test('segments start at the first keyframe at or after the target, or half a part before it', async (t) => {
  const { window, packager } = newPackager({ segmentSeconds: 2, partSeconds: 0.5 })
  start(packager)
  // 1.6 s is too early, 2.4 s is the cut; 4.32 s is 80 ms early but within half a part (250 ms): a cut too.
  const keys = new Set([0, 800, 1600, 2400, 4320, 6240])
  for (let dts = 0; dts < 7000; dts += 40) packager.push(tag.video({ key: keys.has(dts), dts }))
  packager.end()
  t.same(window.track('video').segments.map((s) => Math.round(s.duration * 1000)), [2400, 1920, 1920, 760])
})

t.test('the first segment closes at the first keyframe past its own shorter target, so players can start sooner', async (t) => {
  const { window, packager } = newPackager({ segmentSeconds: 2, partSeconds: 0.5, firstSegmentSeconds: 1 })
  start(packager)
  // Keyframes every second: the first segment is cut at 1 s, the next ones at the 2 s target.
  for (let dts = 0; dts < 7000; dts += 40) packager.push(tag.video({ key: dts % 1000 === 0, dts }))
  packager.end()
  t.same(window.track('video').segments.map((s) => Math.round(s.duration * 1000)), [1000, 2000, 2000, 2000])
  const { window: w2, packager: p2 } = newPackager({ segmentSeconds: 2, partSeconds: 0.5, firstSegmentSeconds: 1 })
  start(p2)
  // With 250-frame GOPs it cannot be shorter than one GOP.
  for (let dts = 0; dts < 12_000; dts += 40) p2.push(tag.video({ key: dts % 10_000 === 0, dts }))
  p2.end()
  t.same(w2.track('video').segments.map((s) => Math.round(s.duration * 1000)), [10_000, 2000])
})

t.test('B-frames with negative composition times keep them signed (trun version 1)', async (t) => {
  const { window, packager } = newPackager()
  start(packager)
  const frames = [
    { dts: 0, cts: 0, key: true },
    { dts: 40, cts: 80, key: false },
    { dts: 80, cts: -40, key: false },
    { dts: 120, cts: 0xffffd8, key: false } // NMS would read -40 as 16777176: the bytes are what count
  ]
  for (const f of frames) packager.push(tag.video({ ...f, cts: f.cts > 0x7fffff ? -40 : f.cts }))
  packager.end()
  t.same(samplesOf(window, 'video').map((s) => s.cto), [0, 7200, -3600, -3600])
})

t.test('an AVC end-of-sequence tag (flagged a keyframe by NMS) is no frame and no cut', async (t) => {
  const { window, packager } = newPackager()
  start(packager)
  feed(packager, { seconds: 1 })
  packager.push(tag.video({ key: true, type: 2, dts: 1000, payload: Buffer.alloc(0) }))
  feed(packager, { fromMs: 1000, seconds: 1, gop: 1000, frameIndex: 1 })
  packager.end()
  t.equal(samplesOf(window, 'video').length, 50)
  t.equal(window.track('video').segments.length, 1)
})

t.test('an unsupported codec is an UnsupportedMediaError from push, and changes nothing', async (t) => {
  const { window, packager } = newPackager()
  const h263 = tag.video({ key: true, dts: 0 })
  h263.data[0] = 0x12
  t.throws(() => packager.push(h263), UnsupportedMediaError)
  const hevc = tag.video({ key: true, dts: 0 })
  hevc.data[0] = 0x90 // enhanced RTMP: sequence start, FourCC follows
  t.throws(() => packager.push(hevc), UnsupportedMediaError)
  const mp3 = tag.audio({ dts: 0 })
  mp3.data[0] = 0x2f
  t.throws(() => packager.push(mp3), UnsupportedMediaError)
  t.throws(() => packager.push(tag.videoConfig(Buffer.from('0164', 'hex'))), UnsupportedMediaError, 'an unreadable header too')
  t.same(packager.tracks, [])
  t.equal(window.tracks.size, 0)
})

t.test('what is kept is copied: the reused packet buffer can be overwritten', async (t) => {
  const { window, packager } = newPackager()
  start(packager)
  const shared = Buffer.alloc(64)
  for (let i = 0; i < 10; i++) {
    const p = tag.video({ key: i === 0, dts: i * 40, payload: Buffer.from([0, 0, 0, 2, 0x41, i]) })
    shared.fill(0)
    p.data.copy(shared)
    packager.push({ ...p, data: shared, size: p.data.length })
    shared.fill(0xee)
  }
  packager.end()
  const bytes = Buffer.concat(window.track('video').segments.flatMap((s) => s.parts.map((p) => p.bytes)))
  for (let i = 0; i < 10; i++) t.not(bytes.indexOf(Buffer.from([0, 0, 0, 2, 0x41, i])), -1, `frame ${i}`)
})

t.test('timestamp jitter: decode times still strictly increase', async (t) => {
  const { window, packager } = newPackager()
  start(packager)
  for (const [i, dts] of [0, 40, 80, 79, 80, 160, 200].entries()) packager.push(tag.video({ key: i === 0, dts }))
  packager.end()
  const dts = samplesOf(window, 'video').map((s) => s.dts)
  t.same(dts, [0, 3600, 7200, 7201, 7202, 14400, 18000])
  t.equal(packager.clamped, 2)
})

t.test('the 32-bit wrap of FLV timestamps (read signed by NMS) continues the timeline', async (t) => {
  const { window, packager } = newPackager()
  start(packager)
  const start32 = 2 ** 32 - 1000
  for (let i = 0; i < 50; i++) {
    const raw = (start32 + i * 40) % 2 ** 32
    packager.push(tag.video({ key: i % 25 === 0, dts: raw | 0 }))
  }
  packager.end()
  const s = samplesOf(window, 'video')
  t.equal(s.length, 50)
  t.ok(s.every((x, i) => x.dts === i * 3600), 'every frame 40 ms after the one before')
})

t.test('ms to 90 kHz without drift: 30 fps over 10 s lands on 900000', async (t) => {
  const { window, packager } = newPackager({ segmentSeconds: 2 })
  start(packager)
  feed(packager, { seconds: 10.1, fps: 30, gop: 30 })
  packager.end()
  t.same(window.track('video').segments.map((s) => s.baseMediaDecodeTime), [0, 180000, 360000, 540000, 720000, 900000])
})

t.test('audio: the timescale is the sample rate and ms rounding does not bend 1024-sample frames', async (t) => {
  const { window, packager } = newPackager()
  start(packager, { audio: true })
  feed(packager, { seconds: 4, audio: true })
  packager.end()
  const audio = samplesOf(window, 'audio')
  t.equal(window.track('audio').info?.timescale, 48000)
  t.ok(audio.slice(0, -1).every((s) => s.duration === 1024), 'every duration 1024')
  t.same(window.track('audio').segments.map((s) => s.msn), window.track('video').segments.map((s) => s.msn))
  const cut = window.track('video').segments[1]?.baseMediaDecodeTime ?? 0
  const acut = window.track('audio').segments[1]?.baseMediaDecodeTime ?? 0
  t.ok(acut / 48000 >= cut / 90000 && acut / 48000 - cut / 90000 < 1024 / 48000, 'audio cuts at its first frame at/after the video cut')
})

t.test('a reconnect: the next samples continue the timeline in a discontinuity segment, msn goes on', async (t) => {
  const { window, packager } = newPackager()
  start(packager, { audio: true })
  feed(packager, { seconds: 3, audio: true })
  packager.discontinuity()
  start(packager, { audio: true }) // the same headers again: no new init
  feed(packager, { seconds: 2, audio: true }) // timestamps restart at 0
  packager.end()
  for (const kind of ['video', 'audio'] as const) {
    const segs = window.track(kind).segments
    t.same(segs.map((s) => [s.msn, s.discontinuity, s.initVersion]), [[0, false, 0], [1, false, 0], [2, true, 0]], kind)
    const last = segs[1]?.parts.flatMap((p) => partSamples(p.bytes)).at(-1)
    const first = segs[2]?.baseMediaDecodeTime ?? 0
    t.ok(last && first >= last.dts + last.duration, `${kind} goes on after its last sample`)
  }
  const ts = window.track('video').segments[2]?.baseMediaDecodeTime ?? 0
  t.ok(ts >= 3 * 90000 && ts <= 3.05 * 90000, 'video continues right after 3 s')
})

t.test('timestamps stepping back by seconds (an encoder restart) are a new timeline too', async (t) => {
  const { log, lines } = capturedLogger('warn')
  const { window, packager } = newPackager({ log })
  start(packager)
  feed(packager, { seconds: 3 })
  feed(packager, { seconds: 1 })
  packager.end()
  t.same(window.track('video').segments.map((s) => s.discontinuity), [false, false, true])
  t.match(lines.join(''), /stepped back/)
})

t.test('a resolution change: new init version at the next keyframe, a discontinuity on both tracks', async (t) => {
  const { window, packager } = newPackager()
  start(packager, { audio: true })
  feed(packager, { seconds: 1, audio: true })
  packager.push(tag.videoConfig(AVCC_SMALL, 1000))
  feed(packager, { fromMs: 1000, seconds: 1, audio: true })
  packager.end()
  const video = window.track('video')
  t.same(video.segments.map((s) => [s.msn, s.initVersion, s.discontinuity]), [[0, 0, false], [1, 1, true]])
  t.same(video.inits.get(1)?.info.width, 322)
  t.same(window.track('audio').segments.map((s) => [s.msn, s.initVersion, s.discontinuity]), [[0, 0, false], [1, 0, true]])
})

t.test('an AAC config change: a new audio init, audio resumes at the next video keyframe, discontinuity on both', async (t) => {
  const { window, packager } = newPackager()
  start(packager, { audio: true })
  feed(packager, { seconds: 1.52, audio: true, gop: 25 })
  packager.push(tag.audioConfig(ASC_44K, 1520))
  feed(packager, { fromMs: 1520, seconds: 1.48, audio: true, gop: 25, frameIndex: 38 })
  packager.end()
  const audio = window.track('audio')
  t.same(audio.segments.map((s) => [s.msn, s.initVersion, s.discontinuity]), [[0, 0, false], [1, 1, true]])
  t.equal(audio.inits.get(1)?.info.timescale, 44100)
  t.same(window.track('video').segments.map((s) => [s.msn, s.discontinuity]), [[0, false], [1, true]])
  const segs = window.track('video').segments
  t.equal(segs[1]?.baseMediaDecodeTime, 2 * 90000, 'cut at the first keyframe after the change (2 s)')
})

t.test('programDateTime is when the first sample of the segment arrived', async (t) => {
  let now = 1000
  const { window, packager } = newPackager({ now: () => now })
  start(packager)
  for (let i = 0; i < 75; i++) {
    now = 5000 + i * 40 + 7
    packager.push(tag.video({ key: i % 25 === 0, dts: i * 40 }))
  }
  packager.end()
  t.same(window.track('video').segments.map((s) => s.programDateTime), [5007, 5007 + 2000])
})
