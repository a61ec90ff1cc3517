import t, { type Test } from 'tap'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { forEachFlvPacket } from './helpers/flv-file.js'
import { ffprobe, makeFlv, workDir, type Probe } from './helpers/ffmpeg.js'
import { flvPackets, newPackager, packageFlv, writeTrack } from './helpers/package.js'
import type { MediaWindow, TrackKind } from '../../src/media/window.js'

// Real media both ways: ffmpeg (libx264, aac) writes the FLV, ffprobe reads what the packager made of it.

const dir = await workDir()
const ms = (s: string | undefined): number => Math.round(Number(s) * 1000)

type Stream = { codec: string; width?: number; height?: number; sampleRate?: number; channels?: number; pts: number[] }

/** The streams of a probe, by kind, with packet pts in ms (shifted by `originMs`). */
function streams(p: Probe, originMs = 0): Partial<Record<TrackKind, Stream>> {
  const out: Partial<Record<TrackKind, Stream>> = {}
  for (const s of p.streams) {
    const kind = s.codec_type === 'video' ? 'video' : 'audio'
    const st: Stream = { codec: s.codec_name, pts: p.packets.filter((x) => x.stream_index === s.index).map((x) => ms(x.pts_time) - originMs) }
    if (s.width) Object.assign(st, { width: s.width, height: s.height })
    if (s.sample_rate) Object.assign(st, { sampleRate: Number(s.sample_rate), channels: s.channels })
    out[kind] = st
  }
  return out
}

/** The first video keyframe's dts in the FLV: where the packager's timeline starts. */
async function originOf(file: string): Promise<number> {
  let origin = -1
  forEachFlvPacket(await readFile(file), (p) => {
    if (origin < 0 && p.codec_type === 9 && p.flags === 3) origin = p.dts
  })
  return Math.max(origin, 0)
}

/** Within 1 ms each (the FLV has ms, the track 90 kHz or the sample rate), in order. */
function samePts(t: Test, got: number[], want: number[], what: string): void {
  t.equal(got.length, want.length, `${what}: packet count`)
  const off = got.map((g, i) => Math.abs(g - (want[i] as number))).filter((d) => d > 1)
  t.same(off, [], `${what}: every pts within 1 ms of the source`)
}

async function checkTrack(t: Test, window: MediaWindow, kind: TrackKind, source: Stream, name: string, dropBeforeMs = -Infinity): Promise<void> {
  const got = streams(await ffprobe(await writeTrack(dir, name, window, kind)))[kind]
  if (!got) return void t.fail(`no ${kind} stream`)
  t.equal(got.codec, source.codec)
  if (kind === 'video') t.same([got.width, got.height], [source.width, source.height], 'dimensions')
  else t.same([got.sampleRate, got.channels], [source.sampleRate, source.channels], 'sample rate, channels')
  samePts(t, got.pts, source.pts.filter((p) => p >= dropBeforeMs), kind)
}

t.test('audio and video with B-frames: both tracks read back as the source, packet for packet', async (t) => {
  const flv = await makeFlv('av', { seconds: 5, video: { gop: 25, bframes: 2 } })
  const window = await packageFlv(flv)
  const origin = await originOf(flv)
  const src = streams(await ffprobe(flv), origin)
  await checkTrack(t, window, 'video', src.video as Stream, 'av')
  // Audio before the first video keyframe is not part of the broadcast.
  await checkTrack(t, window, 'audio', src.audio as Stream, 'av', 0)
  const video = window.track('video')
  t.same(video.segments.map((s) => s.msn), [0, 1, 2], 'segments cut at the keyframes at 2 s and 4 s')
  t.same(video.segments.map((s) => Math.round(s.duration * 1000)), [2000, 2000, 1000])
  t.same(window.track('audio').segments.map((s) => s.msn), [0, 1, 2], 'audio segments on the same msns')
  t.ok(video.segments.every((s) => s.parts.every((p) => Math.abs(p.duration - 0.2) < 0.001)), 'parts of 0.2 s')
  const probe = (await ffprobe(flv)).streams.find((s) => s.codec_type === 'video')
  const profileIdc = { Baseline: 0x42, 'Constrained Baseline': 0x42, Main: 0x4d, High: 0x64 }[probe?.profile ?? ''] ?? -1
  t.match(video.info?.codec, new RegExp(`^avc1\\.${profileIdc.toString(16)}[0-9a-f]{2}${(probe?.level ?? -1).toString(16).padStart(2, '0')}$`), 'codec string from the SPS: profile and level as ffprobe reads them')
})

t.test('init + one part alone reads back as that part of the source', async (t) => {
  const flv = await makeFlv('av', { seconds: 5, video: { gop: 25, bframes: 2 } })
  const window = await packageFlv(flv)
  const src = streams(await ffprobe(flv), await originOf(flv))
  for (const kind of ['video', 'audio'] as const) {
    const tw = window.track(kind)
    const part = tw.segments[1]?.parts[3]
    if (!part) return void t.fail('no part')
    t.notOk(part.independent && kind === 'video', 'a part in the middle of a GOP')
    const file = path.join(dir, `part-${kind}.mp4`)
    await writeFile(file, Buffer.concat([tw.inits.get(0)?.bytes ?? Buffer.alloc(0), part.bytes]))
    const got = streams(await ffprobe(file))[kind]
    // The samples before it, in decode order as in the FLV.
    const before = [...(tw.segments[0]?.parts ?? []), ...(tw.segments[1]?.parts.slice(0, 3) ?? [])].reduce((n, p) => n + sampleCount(p.bytes), 0)
    const want = (src[kind] as Stream).pts.filter((p) => p >= 0).slice(before, before + sampleCount(part.bytes))
    samePts(t, got?.pts ?? [], want, `${kind} part`)
  }
})

t.test('video only (-an): one video track, known after a part without an audio header', async (t) => {
  const flv = await makeFlv('v', { seconds: 3, audio: false })
  const { window, packager } = newPackager()
  for (const p of await flvPackets(flv)) packager.push(p)
  t.same(packager.tracks, ['video'])
  packager.end()
  t.same([...window.tracks.keys()], ['video'])
  await checkTrack(t, window, 'video', streams(await ffprobe(flv), await originOf(flv)).video as Stream, 'v')
})

t.test('audio only (-vn): one audio track, cut by itself', async (t) => {
  const flv = await makeFlv('a', { seconds: 5, video: false, audio: { rate: 44100, channels: 1 } })
  const window = await packageFlv(flv)
  t.same([...window.tracks.keys()], ['audio'])
  const src = streams(await ffprobe(flv))
  const first = (src.audio as Stream).pts[0] as number
  await checkTrack(t, window, 'audio', { ...(src.audio as Stream), pts: (src.audio as Stream).pts.map((p) => p - first) }, 'a')
  const segs = window.track('audio').segments
  t.ok(segs.length >= 2, 'more than one segment')
  t.ok(segs.slice(0, -1).every((s) => s.duration >= 1.85 && s.duration < 2.1), 'segments near the target')
  t.equal(window.track('audio').info?.codec, 'mp4a.40.2')
})

t.test('250-frame GOP: a segment runs to the next keyframe; its parts keep ~0.2 s, independent only at the keyframe', async (t) => {
  const flv = await makeFlv('gop250', { seconds: 12, video: { gop: 250 } })
  const window = await packageFlv(flv)
  const video = window.track('video')
  t.same(video.segments.map((s) => Math.round(s.duration * 1000)), [10000, 2000])
  const parts = video.segments[0]?.parts ?? []
  t.equal(parts.length, 50)
  t.same(parts.map((p) => p.independent), parts.map((_, i) => i === 0))
  t.same(window.track('audio').segments.map((s) => s.msn), [0, 1])
  await checkTrack(t, window, 'video', streams(await ffprobe(flv), await originOf(flv)).video as Stream, 'gop250')
})

t.test('a resolution change mid-stream: a new init version and a discontinuity segment, each readable', async (t) => {
  const a = await makeFlv('rc-a', { seconds: 2, video: { size: '320x240' } })
  const b = await makeFlv('rc-b', { seconds: 2, video: { size: '240x160' } })
  const { window, packager } = newPackager()
  for (const p of await flvPackets(a, b)) packager.push(p)
  packager.end()
  const video = window.track('video')
  t.same([...video.inits.keys()], [0, 1])
  t.same([video.inits.get(0)?.info.width, video.inits.get(1)?.info.height], [320, 160])
  const changed = video.segments.find((s) => s.initVersion === 1)
  t.ok(changed?.discontinuity, 'the first segment with the new init is a discontinuity')
  t.same(window.track('audio').segments.map((s) => [s.msn, s.discontinuity]), video.segments.map((s) => [s.msn, s.discontinuity]), 'audio follows on the same msns and discontinuities')
  const second = streams(await ffprobe(await writeTrack(dir, 'rc1', window, 'video', { initVersion: 1 }))).video
  t.same([second?.width, second?.height], [240, 160])
  t.equal(second?.pts.length, 50, 'every frame of the second clip')
})

function sampleCount(part: Buffer): number {
  // moof(8) mfhd(16) traf(8) tfhd(16) tfdt(20) trun: sample count after its header and flags.
  return part.readUInt32BE(8 + 16 + 8 + 16 + 20 + 12)
}
