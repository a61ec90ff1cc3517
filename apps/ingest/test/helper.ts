import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { once } from 'node:events'
import net from 'node:net'
import { Writable } from 'node:stream'
import pino, { type Logger } from 'pino'
import type { AddressInfo } from 'node:net'
import { closeMediaHttp, createMediaHttp, type MediaHttpOptions, type MediaHttpServer } from '../src/media-http.js'
import { MediaWindow, MediaWindows, type TrackInfo, type TrackKind, type TrackWindow } from '../src/media/window.js'
import { Redis } from 'ioredis'
import { dropTestPrefix } from '@livestream/events/testing'

/** A pino logger whose lines are kept in memory, for tests that check what was logged. */
export function capturedLogger(level: pino.Level = 'debug'): { log: Logger; lines: string[] } {
  const lines: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString())
      done()
    }
  })
  return { log: pino({ level }, sink), lines }
}

/** A fresh directory under the system's temporary one, removed when `t` ends. */
export async function tempDir(t: { teardown(fn: () => Promise<void>): void }, prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A live window filled by hand, as the packager would: fake part bytes, 2 s segments of four 0.5 s parts by default. */
export function fakeWindow(opts: { id?: string; video?: boolean; audio?: boolean; keep?: number; segmentTarget?: number; partTarget?: number } = {}): MediaWindow {
  const w = new MediaWindow(opts.id ?? 'pb1', opts.segmentTarget ?? 2, opts.partTarget ?? 0.5, opts.keep ?? 6)
  w.startedAt = T0
  const info: Record<TrackKind, TrackInfo> = {
    video: { kind: 'video', codec: 'avc1.64001f', timescale: 90_000, width: 1280, height: 720, frameRate: 30 },
    audio: { kind: 'audio', codec: 'mp4a.40.2', timescale: 48_000, sampleRate: 48_000, channels: 2 }
  }
  if (opts.video ?? true) w.track('video').setInit(0, info.video, Buffer.from('video-init-0'))
  if (opts.audio ?? true) w.track('audio').setInit(0, info.audio, Buffer.from('audio-init-0'))
  return w
}

/** Wall-clock time of the fake broadcast's first sample. */
export const T0 = Date.UTC(2026, 0, 1, 12, 0, 0)

/**
 * Writes the next segment on every track of `w`: `parts` parts of `partDuration` s (bytes: `partBytes` of the msn),
 * left open when `complete` is false. Times follow the previous segment of the track.
 */
export function writeSegment(
  w: MediaWindow,
  opts: { parts?: number; partDuration?: number; partBytes?: number; complete?: boolean; discontinuity?: boolean; initVersion?: number } = {}
): number {
  const parts = opts.parts ?? 4
  const partDuration = opts.partDuration ?? 0.5
  let msn = 0
  for (const track of w.tracks.values()) {
    const prev = track.segments.at(-1)
    msn = prev ? prev.msn + 1 : 0
    const ts = track.info?.timescale ?? 1000
    const start = prev ? prev.baseMediaDecodeTime + Math.round(prev.duration * ts) : 0
    const pdt = prev ? prev.programDateTime + Math.round(prev.duration * 1000) : T0
    track.openSegment({ msn, baseMediaDecodeTime: start, programDateTime: pdt, discontinuity: opts.discontinuity ?? false, initVersion: opts.initVersion ?? 0 })
    for (let i = 0; i < parts; i++) addFakePart(track, msn, partDuration, opts.partBytes)
    if (opts.complete ?? true) track.closeSegment()
  }
  return msn
}

export function addFakePart(track: TrackWindow, msn: number, duration = 0.5, bytes = 1000): void {
  const index = track.segments.at(-1)?.parts.length ?? 0
  track.addPart({ duration, independent: true, bytes: Buffer.alloc(bytes, `${track.kind}:${msn}.${index};`) })
}

/** Removes a test's Redis keys (queue, heartbeats) once what wrote them is closed. */
export async function dropRedisPrefix(prefix: string, url = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await redis.connect()
    await dropTestPrefix(redis, prefix)
  } finally {
    redis.disconnect()
  }
}

/** A port free on loopback right now (the OS picks it). */
export async function freePort(): Promise<number> {
  const srv = net.createServer().listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const { port } = srv.address() as net.AddressInfo
  await new Promise((r) => srv.close(r))
  return port
}

/**
 * Media HTTP listening on a free loopback port for one test: healthy, ready, no metrics, silent, unless `overrides`
 * say otherwise; closed at the test's teardown (registered first, so it runs before the test's own).
 */
export async function serveMedia(
  t: { teardown(fn: () => Promise<void>): void },
  overrides: Partial<MediaHttpOptions> = {}
): Promise<{ server: MediaHttpServer; base: string }> {
  const server = createMediaHttp({
    windows: new MediaWindows(),
    host: '127.0.0.1',
    port: 0,
    requestTimeout: 2_000,
    headersTimeout: 1_000,
    health: () => ({ ok: true, detail: {} }),
    ready: () => ({ ok: true, detail: {} }),
    metrics: () => '',
    log: pino({ level: 'silent' }),
    ...overrides
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => closeMediaHttp(server))
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

/** Short packaging for tests that feed a clip to live streams: 1 s segments of 0.25 s parts, 4 kept, 300 ms retention. */
export const TEST_PACKAGING = { segmentSeconds: 1, partSeconds: 0.25, windowSegments: 4, mediaRetentionMs: 300 } as const
