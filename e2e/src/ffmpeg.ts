import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
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

/** ffprobe's view of a CMAF track: its init segment and one media segment, fetched and joined as a player would. */
export async function probeCmaf(initUrl: string, segmentUrl: string): Promise<ProbeResult & { packets: number }> {
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
    const result = await probe(file)
    const { stdout } = await run(FFPROBE, ['-v', 'error', '-count_packets', '-show_entries', 'stream=nb_read_packets', '-of', 'csv=p=0', file], { timeout: 20_000 })
    return { ...result, packets: Number(stdout.trim().split('\n')[0]) }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
