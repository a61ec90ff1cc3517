import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { serveMedia } from '../helper.js'
import { MediaWindow, MediaWindows, type TrackInfo, type TrackWindow } from '../../src/media/window.js'

// Real CMAF bytes (fragmented MP4 from ffmpeg, one moof+mdat per ~1/3 s) in a window, then read back by ffmpeg's own
// HLS and DASH demuxers over HTTP: the playlists, the MPD and the URLs work for a player that knows nothing of LL-HLS.

const run = promisify(execFile)
const ffmpeg = process.env.FFMPEG_PATH ?? 'ffmpeg'
const hasFfmpeg = await run(ffmpeg, ['-version']).then(
  () => true,
  () => false
)

interface Box {
  type: string
  start: number
  end: number
}
function boxes(b: Buffer, from = 0, to = b.length): Box[] {
  const out: Box[] = []
  for (let i = from; i + 8 <= to; ) {
    const size = b.readUInt32BE(i)
    out.push({ type: b.toString('latin1', i + 4, i + 8), start: i, end: i + size })
    i += size
  }
  return out
}
/** The first box of `type` found by walking containers, as [payload start, end]. */
function find(b: Buffer, pathTypes: string[], from = 0, to = b.length): [number, number] {
  const [head, ...rest] = pathTypes
  const box = boxes(b, from, to).find((x) => x.type === head)
  if (!box) throw new Error(`no ${head}`)
  return rest.length ? find(b, rest, box.start + 8, box.end) : [box.start + 8, box.end]
}

/** Init segment, timescale and fragments (bytes + tfdt) of a fragmented MP4. */
function split(file: Buffer) {
  const top = boxes(file)
  const moov = top.find((x) => x.type === 'moov') as Box
  const init = file.subarray(0, moov.end)
  const [mdhd] = find(file, ['moov', 'trak', 'mdia', 'mdhd'])
  const timescale = file.readUInt32BE(mdhd + (file[mdhd] === 1 ? 20 : 12))
  const fragments: Array<{ bytes: Buffer; tfdt: number }> = []
  for (let i = 0; i < top.length; i++) {
    const box = top[i] as Box
    if (box.type !== 'moof') continue
    const [tfdt] = find(file, ['traf', 'tfdt'], box.start + 8, box.end)
    const time = file[tfdt] === 1 ? Number(file.readBigUInt64BE(tfdt + 4)) : file.readUInt32BE(tfdt + 4)
    fragments.push({ bytes: file.subarray(box.start, (top[i + 1] as Box).end), tfdt: time })
  }
  return { init, timescale, fragments }
}

/** Fills a track: a new segment at each `cut` (seconds), parts = fragments (the last one dropped: its length is unknown). */
function fill(track: TrackWindow, info: TrackInfo, file: ReturnType<typeof split>, cuts: number[], t0: number) {
  track.setInit(0, info, file.init)
  const { fragments, timescale } = file
  let next = 0
  for (let i = 0; i + 1 < fragments.length; i++) {
    const f = fragments[i] as { bytes: Buffer; tfdt: number }
    const at = f.tfdt / timescale
    if (next < cuts.length && at >= (cuts[next] as number) - 1e-6) {
      track.openSegment({ msn: next, baseMediaDecodeTime: f.tfdt, programDateTime: t0 + Math.round(at * 1000), discontinuity: false, initVersion: 0 })
      next++
    }
    track.addPart({ duration: ((fragments[i + 1] as { tfdt: number }).tfdt - f.tfdt) / timescale, independent: track.kind === 'audio' || at === cuts[next - 1], bytes: f.bytes })
  }
  track.end()
}

t.test('ffmpeg plays the window as ordinary HLS and as DASH', { skip: hasFfmpeg ? false : 'no ffmpeg' }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'ls-cmaf-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const frag = ['-f', 'mp4', '-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-frag_duration', '333333']
  await run(ffmpeg, ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=30', '-t', '8', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '60', '-keyint_min', '60', '-sc_threshold', '0', '-pix_fmt', 'yuv420p', ...frag, path.join(dir, 'v.mp4')])
  await run(ffmpeg, ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '8', '-c:a', 'aac', '-ac', '2', ...frag, path.join(dir, 'a.mp4')])

  const w = new MediaWindow('real', 2, 0.34, 10)
  // A broadcast that started 8 s ago (DASH players place themselves by the wall clock) and just ended.
  const t0 = Date.now() - 8_000
  w.startedAt = t0
  const cuts = [0, 2, 4, 6]
  fill(w.track('video'), { kind: 'video', codec: 'avc1.42c00d', timescale: 0, width: 320, height: 240, frameRate: 30 }, split(await readFile(path.join(dir, 'v.mp4'))), cuts, t0)
  fill(w.track('audio'), { kind: 'audio', codec: 'mp4a.40.2', timescale: 0, sampleRate: 48_000, channels: 2 }, split(await readFile(path.join(dir, 'a.mp4'))), cuts, t0)
  for (const track of w.tracks.values()) {
    const info = track.info as TrackInfo
    info.timescale = split(track.inits.get(0)?.bytes as Buffer).timescale
  }
  const windows = new MediaWindows()
  windows.set(w)
  const { base } = await serveMedia(t, { windows, requestTimeout: 5_000, headersTimeout: 2_000 })

  const decode = async (url: string, ...limit: string[]) => {
    const args = ['-hide_banner', '-nostats', '-loglevel', 'info', '-i', url, '-map', '0', ...limit, '-f', 'null', '-']
    const { stderr } = await run(ffmpeg, args, { timeout: 30_000, killSignal: 'SIGKILL' })
    return stderr
  }
  const hls = await decode(`${base}/hls/real/index.m3u8`)
  t.match(hls, /Stream #0:\d+.*Video: h264.*320x240/)
  t.match(hls, /Stream #0:\d+.*Audio: aac.*48000 Hz/)
  const frames = Number(/video:\d+kB audio:\d+kB/.test(hls) ? /frame=\s*(\d+)/.exec(hls)?.[1] : NaN)
  t.ok(frames >= 7 * 30, `HLS: ${frames} video frames decoded (7.67 s in the window)`)

  const dash = await decode(`${base}/dash/real/index.mpd`, '-t', '1')
  t.match(dash, /Video: h264.*320x240/)
  t.match(dash, /Audio: aac/)
  const dashFrames = Number(/frame=\s*(\d+)/.exec(dash)?.[1])
  t.ok(dashFrames >= 25, `DASH: ${dashFrames} video frames decoded in the first second asked for`)
})
