// Pre-encoded clips, made once into bench/.work/: publishers send them with -c copy and cost almost nothing.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { FFMPEG, WORK } from './lib.mjs'

/** 720p30, 2.5 Mbps H.264 (2 s GOP) + AAC, 10 s. */
export function clip720() {
  const file = path.join(WORK, 'clip-720p-2500k.flv')
  if (!existsSync(file)) {
    execFileSync(FFMPEG, [
      '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
      '-t', '10', '-c:v', 'libx264', '-preset', 'veryfast', '-b:v', '2500k', '-maxrate', '2500k', '-bufsize', '5000k',
      '-g', '60', '-keyint_min', '60', '-sc_threshold', '0', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '128k', '-f', 'flv', file
    ])
  }
  return file
}

/** 640x360p30, 1 Mbps H.264 (`gop` s GOP, 2 by default) + AAC, 10 s: many publishers, players and two balancers on one small box. */
export function clip360(gop = 2) {
  const file = path.join(WORK, `clip-360p-1000k-g${gop}.flv`)
  if (!existsSync(file)) {
    execFileSync(FFMPEG, [
      '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
      '-t', '10', '-c:v', 'libx264', '-preset', 'veryfast', '-b:v', '1000k', '-maxrate', '1000k', '-bufsize', '2000k',
      '-g', String(30 * gop), '-keyint_min', String(30 * gop), '-sc_threshold', '0', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '128k', '-f', 'flv', file
    ])
  }
  return file
}

export function publishArgs(file, url, seconds) {
  return ['-hide_banner', '-loglevel', 'error', '-nostdin', '-re', '-stream_loop', '-1', '-i', file, ...(seconds ? ['-t', String(seconds)] : []), '-c', 'copy', '-f', 'flv', url]
}
