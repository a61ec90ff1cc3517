import { execFile } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
export const FFMPEG = process.env.FFMPEG_PATH ?? 'ffmpeg'
export const FFPROBE = process.env.FFPROBE_PATH ?? (process.env.FFMPEG_PATH ? path.join(path.dirname(process.env.FFMPEG_PATH), 'ffprobe') : 'ffprobe')

let dir: Promise<string> | null = null
/** One temp dir per test process, removed at exit: clips are made once per file. */
export function workDir(): Promise<string> {
  dir ??= mkdtemp(path.join(tmpdir(), 'ls-cmaf-')).then((d) => {
    // Synchronous: nothing asynchronous runs in an exit handler.
    process.once('exit', () => rmSync(d, { recursive: true, force: true }))
    return d
  })
  return dir
}

export interface ClipOptions {
  seconds: number
  video?: { size?: string; gop?: number; bframes?: number; rate?: number } | false
  audio?: { rate?: number; channels?: number } | false
}

/** An FLV made by the real ffmpeg (libx264 + aac), cached by its options. */
export async function makeFlv(name: string, o: ClipOptions): Promise<string> {
  const out = path.join(await workDir(), `${name}.flv`)
  if (existsSync(out)) return out
  const args = ['-hide_banner', '-v', 'error', '-y']
  if (o.video !== false) {
    const v = o.video ?? {}
    args.push('-f', 'lavfi', '-i', `testsrc=size=${v.size ?? '320x240'}:rate=${v.rate ?? 25}:duration=${o.seconds}`)
  }
  if (o.audio !== false) {
    const a = o.audio ?? {}
    args.push('-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=${a.rate ?? 48000}:duration=${o.seconds}`)
  }
  if (o.video !== false) {
    const v = o.video ?? {}
    args.push('-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', String(v.gop ?? 25), '-keyint_min', String(v.gop ?? 25), '-sc_threshold', '0', '-bf', String(v.bframes ?? 0))
    if ((v.bframes ?? 0) > 0) args.push('-x264-params', 'b-pyramid=0')
  }
  if (o.audio !== false) args.push('-c:a', 'aac', '-b:a', '64k', '-ac', String(o.audio?.channels ?? 2))
  args.push('-f', 'flv', out)
  await run(FFMPEG, args)
  return out
}

export interface Probe {
  streams: { index: number; codec_name: string; profile?: string; level?: number; codec_type: string; width?: number; height?: number; sample_rate?: string; channels?: number }[]
  packets: { stream_index: number; pts_time: string; dts_time: string; duration_time?: string; flags: string; size: string }[]
}

export async function ffprobe(file: string): Promise<Probe> {
  const { stdout } = await run(FFPROBE, ['-v', 'error', '-show_entries', 'stream=index,codec_name,profile,level,codec_type,width,height,sample_rate,channels:packet=stream_index,pts_time,dts_time,duration_time,flags,size', '-show_packets', '-of', 'json', file], { maxBuffer: 64 * 1024 * 1024 })
  return JSON.parse(stdout) as Probe
}
