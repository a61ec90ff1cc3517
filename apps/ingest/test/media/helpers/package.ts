import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import pino from 'pino'
import { CmafPackager, type CmafPackagerOptions } from '../../../src/media/cmaf-packager.js'
import type { MediaPacket } from '../../../src/media/flv.js'
import { MediaWindow, type TrackKind } from '../../../src/media/window.js'
import { forEachFlvPacket } from './flv-file.js'

export const silent = pino({ level: 'silent' })

export function newPackager(o: Partial<Omit<CmafPackagerOptions, 'window'>> & { keep?: number } = {}): { window: MediaWindow; packager: CmafPackager } {
  const segmentSeconds = o.segmentSeconds ?? 2
  const partSeconds = o.partSeconds ?? 0.2
  const window = new MediaWindow('pb1', segmentSeconds, partSeconds, o.keep ?? 1000)
  let clock = 1_700_000_000_000
  // Tests of the cut rule see every segment at the same target unless they ask for a short first one.
  const firstSegmentSeconds = o.firstSegmentSeconds ?? segmentSeconds
  const packager = new CmafPackager({ window, segmentSeconds, partSeconds, firstSegmentSeconds, now: o.now ?? (() => clock++), log: o.log ?? silent })
  return { window, packager }
}

/** Every packet of the FLV files, one after the other (later files shifted to follow on, as a switch of source). */
export async function flvPackets(...files: string[]): Promise<MediaPacket[]> {
  const out: MediaPacket[] = []
  let shift = 0
  for (const f of files) {
    let last = 0
    forEachFlvPacket(await readFile(f), (p) => {
      const size = p.size ?? p.data.length
      out.push({ ...p, dts: p.dts + shift, pts: p.pts + shift, data: Buffer.from(p.data.subarray(0, size)), size })
      last = Math.max(last, p.dts + shift)
    })
    shift = last + 40
  }
  return out
}

/** Feeds an FLV file through a packager the way node-media-server would (one reused buffer). */
export async function packageFlv(file: string, o: Parameters<typeof newPackager>[0] = {}): Promise<MediaWindow> {
  const { window, packager } = newPackager(o)
  forEachFlvPacket(await readFile(file), (p) => packager.push(p))
  packager.end()
  return window
}

/** Writes init segment `initVersion` and the chosen segments (default: all with that init) of a track to a file. */
export async function writeTrack(dir: string, name: string, window: MediaWindow, kind: TrackKind, o: { initVersion?: number; msns?: number[] } = {}): Promise<string> {
  const t = window.track(kind)
  const version = o.initVersion ?? 0
  const init = t.inits.get(version)
  if (!init) throw new Error(`no init ${version}`)
  const segs = t.segments.filter((s) => (o.msns ? o.msns.includes(s.msn) : s.initVersion === version))
  const file = path.join(dir, `${name}-${kind}.mp4`)
  await writeFile(file, Buffer.concat([init.bytes, ...segs.flatMap((s) => s.parts.map((p) => p.bytes))]))
  return file
}
