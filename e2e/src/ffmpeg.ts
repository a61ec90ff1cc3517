import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { bitClockFilter } from './bit-clock.js'
import { startProcess, type Managed } from './process.js'

const run = promisify(execFile)
export const FFMPEG = process.env.FFMPEG_PATH ?? 'ffmpeg'
export const FFPROBE = process.env.FFPROBE_PATH ?? 'ffprobe'

/**
 * Publishes a generated clip (testsrc + sine, H.264 + AAC, 1 s GOP) in real time over RTMP.
 * The process is ours: stop it with `stop()`.
 */
export function publishTestClip(rtmpUrl: string, seconds: number, name = 'publisher'): Managed {
  const args = [
    '-hide_banner', '-loglevel', 'warning', '-nostdin',
    '-re',
    '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-t', String(seconds),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '25', '-keyint_min', '25', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '64k',
    '-f', 'flv', rtmpUrl
  ]
  return startProcess(name, FFMPEG, args, { PATH: process.env.PATH })
}

export interface ClockSourceOptions {
  /** Length of the publish or file. */
  seconds: number
  /** Keyframe interval in frames: 25 is 1 s at 25 fps; OBS's default is 250. */
  gopFrames?: number
  /** A sine track (AAC); default true. */
  audio?: boolean
  /** The test picture with the burned-in clock (H.264); default true. Without it there is nothing to read back. */
  video?: boolean
  /** B-frames between references (`-bf`); default 0, as OBS's zerolatency tuning. */
  bframes?: number
  /** `WIDTHxHEIGHT`; default 640x360. */
  size?: string
  fps?: number
}

/**
 * The ffmpeg arguments of a real-time (`-re`) H.264 + AAC source whose picture carries its own capture time (see
 * bit-clock.ts), without the output. libx264 ultrafast/zerolatency as a live encoder would be set.
 */
function clockSourceArgs(opts: ClockSourceOptions): string[] {
  const { seconds, gopFrames = 25, audio = true, video = true, bframes = 0, size = '640x360', fps = 25 } = opts
  if (!audio && !video) throw new Error('a clock source needs audio, video or both')
  const width = Number(size.split('x')[0])
  const args = ['-hide_banner', '-loglevel', 'warning', '-nostdin', '-re']
  if (video) args.push('-f', 'lavfi', '-i', `testsrc=size=${size}:rate=${fps}`)
  if (audio) args.push('-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000')
  args.push('-t', String(seconds))
  if (video) {
    args.push(
      '-vf', bitClockFilter(width, fps),
      '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency',
      '-g', String(gopFrames), '-keyint_min', String(gopFrames), '-sc_threshold', '0', '-bf', String(bframes),
      '-pix_fmt', 'yuv420p'
    )
  }
  if (audio) args.push('-c:a', 'aac', '-b:a', '64k')
  return args
}

/**
 * Publishes a test picture with a burned-in wall clock (and a sine tone) in real time over RTMP, so a player page can
 * measure glass-to-glass latency frame by frame. The process is ours: stop it with `stop()`.
 */
export function publishClock(rtmpUrl: string, opts: ClockSourceOptions, name = 'clock-publisher'): ClockPublisher {
  // -progress: a report on stdout every 50 ms, so we know (to ~50 ms) when the first frame went out.
  const args = [...clockSourceArgs(opts), '-progress', 'pipe:1', '-stats_period', '0.05', '-f', 'flv', rtmpUrl]
  const proc = startProcess(name, FFMPEG, args, { PATH: process.env.PATH })
  const started = Date.now()
  const firstFrameAt = new Promise<number | null>((resolve) => {
    const sent = opts.video === false ? /^out_time_us=([1-9]\d*)$/m : /^frame=([1-9]\d*)$/m
    const onData = (chunk: Buffer) => {
      if (!sent.test(chunk.toString('utf8'))) return
      proc.child.stdout?.off('data', onData)
      resolve(Date.now())
    }
    proc.child.stdout?.on('data', onData)
    void proc.exited.then(() => resolve(null))
  })
  return Object.assign(proc, { started, firstFrameAt })
}

export interface ClockPublisher extends Managed {
  /** When the process was spawned (ms since the epoch). */
  started: number
  /** When ffmpeg reported its first frame (or, audio only, its first audio) sent; null if it exited before. */
  firstFrameAt: Promise<number | null>
}

/** Writes the same clock source to an MP4 file in real time (for checking the decoder without a stack). */
export async function recordClock(file: string, opts: ClockSourceOptions): Promise<void> {
  await run(FFMPEG, [...clockSourceArgs(opts), '-movflags', '+faststart', '-y', file], { timeout: (opts.seconds + 30) * 1000 })
}

export interface ProbedStream {
  /** `video`, `audio`, ... */
  type: string
  /** ffprobe's codec name: `h264`, `aac`, ... */
  codec: string
}

export interface ProbeResult {
  streams: ProbedStream[]
  /** The codec names of all streams, for messages. */
  codecs: string[]
}

/** ffprobe's view of a media URL or file: the type and codec of each of its streams. */
export async function probe(target: string): Promise<ProbeResult> {
  const { stdout } = await run(FFPROBE, ['-v', 'error', '-show_entries', 'stream=codec_type,codec_name', '-of', 'json', target], {
    timeout: 20_000
  })
  const parsed = JSON.parse(stdout) as { streams?: Array<{ codec_name?: string; codec_type?: string }> }
  const streams = (parsed.streams ?? []).map((s) => ({ type: s.codec_type ?? '?', codec: s.codec_name ?? '?' }))
  return { streams, codecs: streams.map((s) => s.codec) }
}

let clip: Promise<string> | null = null
/**
 * A short H.264 + AAC clip encoded once per test process, so many publishers can send it with `-c copy` and cost
 * almost nothing (the machine's cores go to the system under test, not to encoding).
 */
export function preEncodedClip(): Promise<string> {
  clip ??= (async () => {
    const { mkdtemp } = await import('node:fs/promises')
    const { tmpdir } = await import('node:os')
    const path = await import('node:path')
    const dir = await mkdtemp(path.join(tmpdir(), 'ls-clip-'))
    const file = path.join(dir, 'clip.flv')
    await run(FFMPEG, [
      '-hide_banner', '-loglevel', 'error', '-nostdin',
      '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
      '-t', '4', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '64k',
      '-f', 'flv', file
    ])
    return file
  })()
  return clip
}

/** Publishes the pre-encoded clip in a loop, in real time, without re-encoding. */
export async function publishClipLoop(rtmpUrl: string, seconds: number, name = 'looper'): Promise<Managed> {
  const file = await preEncodedClip()
  return startProcess(
    name,
    FFMPEG,
    ['-hide_banner', '-loglevel', 'warning', '-nostdin', '-re', '-stream_loop', '-1', '-i', file, '-t', String(seconds), '-c', 'copy', '-f', 'flv', rtmpUrl],
    { PATH: process.env.PATH }
  )
}

/** Fetches an init segment and one media segment, joins them as a player would and hands the file to `read`. */
async function withCmafTrack<T>(initUrl: string, segmentUrl: string, read: (file: string) => Promise<T>): Promise<T> {
  const { mkdtemp, rm, writeFile } = await import('node:fs/promises')
  const { tmpdir } = await import('node:os')
  const path = await import('node:path')
  const get = async (u: string) => {
    const res = await fetch(u)
    if (!res.ok) throw new Error(`GET ${u}: ${res.status}`)
    return Buffer.from(await res.arrayBuffer())
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'ls-cmaf-'))
  try {
    const file = path.join(dir, 'track.mp4')
    await writeFile(file, Buffer.concat([await get(initUrl), await get(segmentUrl)]))
    return await read(file)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** ffprobe's view of a CMAF track: its init segment and one media segment, fetched and joined as a player would. */
export function probeCmaf(initUrl: string, segmentUrl: string): Promise<ProbeResult & { packets: number }> {
  return withCmafTrack(initUrl, segmentUrl, async (file) => {
    const result = await probe(file)
    const { stdout } = await run(FFPROBE, ['-v', 'error', '-count_packets', '-show_entries', 'stream=nb_read_packets', '-of', 'csv=p=0', file], { timeout: 20_000 })
    return { ...result, packets: Number(stdout.trim().split('\n')[0]) }
  })
}

export interface ProbedVideo {
  width: number
  height: number
  /** Packets in decode (file) order, times in the track's time base. */
  packets: Array<{ pts: number; dts: number }>
}

/** The picture size and the packet timestamps of a CMAF video track (init + one segment), as ffprobe reads them. */
export function probeCmafVideo(initUrl: string, segmentUrl: string): Promise<ProbedVideo> {
  return withCmafTrack(initUrl, segmentUrl, async (file) => {
    const { stdout } = await run(
      FFPROBE,
      ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height:packet=pts,dts', '-of', 'json', file],
      { timeout: 20_000 }
    )
    const parsed = JSON.parse(stdout) as { streams?: Array<{ width?: number; height?: number }>; packets?: Array<{ pts?: number; dts?: number }> }
    const stream = parsed.streams?.[0] ?? {}
    return {
      width: stream.width ?? 0,
      height: stream.height ?? 0,
      packets: (parsed.packets ?? []).map((p) => ({ pts: Number(p.pts), dts: Number(p.dts) }))
    }
  })
}

/** Encodes a clip (testsrc + sine, H.264 + AAC, 1 s GOP) to an FLV file, for publishers that send it with `-c copy`. */
export async function encodeFlvClip(file: string, o: { size: string; seconds: number }): Promise<void> {
  await run(FFMPEG, [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'lavfi', '-i', `testsrc=size=${o.size}:rate=25`, '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', String(o.seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '25', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '64k', '-f', 'flv', file
  ], { timeout: (o.seconds + 30) * 1000 })
}

/** Publishes an FLV file once, in real time, as it is (`-c copy`: ffmpeg passes a mid-file sequence header on). */
export function publishFile(rtmpUrl: string, file: string, name = 'file-publisher'): Managed {
  return startProcess(
    name,
    FFMPEG,
    ['-hide_banner', '-loglevel', 'warning', '-nostdin', '-re', '-i', file, '-c', 'copy', '-f', 'flv', rtmpUrl],
    { PATH: process.env.PATH }
  )
}

/** Publishes H.264 video with MP3 audio: legal FLV (sound format 2), but not a codec the packager takes. */
export function publishMp3(rtmpUrl: string, seconds: number, name = 'mp3-publisher'): Managed {
  return startProcess(
    name,
    FFMPEG,
    [
      '-hide_banner', '-loglevel', 'warning', '-nostdin', '-re',
      '-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
      '-t', String(seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '25', '-pix_fmt', 'yuv420p',
      '-c:a', 'libmp3lame', '-b:a', '64k', '-f', 'flv', rtmpUrl
    ],
    { PATH: process.env.PATH }
  )
}
