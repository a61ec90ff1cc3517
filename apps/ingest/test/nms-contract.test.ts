import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import {
  createNodeMediaServer,
  hashPassword,
  NMS_VERSION,
  publisherOf,
  routeNmsLogs,
  tapBroadcast,
  type AVPacket,
  type NmsSession
} from '../src/nms.js'
import { freePort } from './helper.js'

// What ingest relies on in node-media-server, checked against the installed copy. A failure here after an upgrade
// means: re-read its source and update src/nms.ts, the only module that reaches into it.

const require = createRequire(import.meta.url)
const FFMPEG = process.env.FFMPEG_PATH ?? 'ffmpeg'

t.test('the installed node-media-server is the version the adapter was written against', async (t) => {
  t.equal((require('node-media-server/package.json') as { version: string }).version, NMS_VERSION)
  t.equal(NMS_VERSION, '4.4.3')
})

t.test('a broadcast server carries broadcastMessage as an instance field, so replacing it touches that broadcast only', async (t) => {
  const BroadcastServer = require('node-media-server/src/server/broadcast_server.js') as new (p: string) => Record<string, unknown>
  const a = new BroadcastServer('/live/a')
  const b = new BroadcastServer('/live/b')
  t.ok(Object.hasOwn(a, 'broadcastMessage'), 'an own property')
  t.not(a.broadcastMessage, b.broadcastMessage, 'one function per instance')
  t.equal(a.publisher, null)
  t.type(a.subscribers, Map)
})

t.test('its scrypt hash is what the admin login compares against', async (t) => {
  const hash = hashPassword('pw')
  t.match(hash, /\S{20,}/)
  t.not(hash, 'pw')
})

t.test('a real RTMP publish: the tap gets every parsed packet in the shape the packager reads, and the fan-out is skipped', async (t) => {
  const root = await mkdtemp(path.join(tmpdir(), 'ls-nms-'))
  const port = await freePort()
  const nmsLines: string[] = []
  routeNmsLogs((message) => nmsLines.push(message))
  const nms = createNodeMediaServer({ bind: '127.0.0.1', rtmp: { port, chunk_size: 60_000, gop_cache: true, ping: 30, ping_timeout: 60 }, webadmin: { enable: false }, store: { path: root } })
  const packets: Array<Pick<AVPacket, 'codec_type' | 'flags' | 'dts' | 'pts'> & { head: number[] }> = []
  let publisher: NmsSession | null = null
  let tapped = false
  nms.on('prePublish', (session) => {
    publisher = session
    tapped = tapBroadcast(session.streamPath, (p) => packets.push({ codec_type: p.codec_type, flags: p.flags, dts: p.dts, pts: p.pts, head: [...p.data.subarray(0, 5)] }))
  })
  await nms.run()
  t.teardown(async () => {
    await nms.stop()
    await rm(root, { recursive: true, force: true })
  })
  const ff = spawn(FFMPEG, [
    '-hide_banner', '-loglevel', 'error', '-nostdin',
    '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-t', '1', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-bf', '2', '-pix_fmt', 'yuv420p', '-c:a', 'aac',
    '-f', 'flv', `rtmp://127.0.0.1:${port}/live/contract`
  ], { stdio: 'ignore' })
  let ownerSeen: NmsSession | null = null
  ff.once('spawn', () => {
    const poll = setInterval(() => {
      ownerSeen ??= publisherOf('/live/contract')
    }, 10)
    ff.once('exit', () => clearInterval(poll))
  })
  await once(ff, 'exit')
  t.ok(tapped, 'the broadcast existed when prePublish fired')
  t.equal(ownerSeen, publisher, 'publisherOf names the publishing session')
  const video = packets.filter((p) => p.codec_type === 9)
  const audio = packets.filter((p) => p.codec_type === 8)
  t.equal(video[0]?.flags, 2, 'the AVC sequence header comes first (flags 2)')
  t.same(video[0]?.head.slice(0, 2), [0x17, 0], 'FLV video prefix: keyframe, AVC, AVCPacketType 0')
  t.equal(audio[0]?.flags, 0, 'the AAC sequence header comes first (flags 0)')
  t.equal((audio[0]?.head[0] ?? 0) >> 4, 10, 'FLV audio prefix: sound format 10 (AAC)')
  t.equal(audio[0]?.head[1], 0, 'AACPacketType 0')
  const keyframes = video.filter((p) => p.flags === 3)
  t.ok(keyframes.length >= 1, 'keyframes are flags 3')
  t.ok(keyframes.every((k) => k.head[0] === 0x17), 'with the FLV keyframe prefix')
  const eos = keyframes.filter((k) => k.head[1] === 2)
  t.equal(eos.length, 1, "ffmpeg's closing AVC end-of-sequence tag is flagged as a keyframe too: the packager must check AVCPacketType")
  t.ok(keyframes.filter((k) => k.head[1] !== 2).every((k) => k.head[1] === 1), 'the real ones carry AVCPacketType 1')
  t.ok(video.some((p) => p.flags === 4 && p.head[0] === 0x27), 'inter frames are flags 4')
  t.ok(audio.filter((p) => p.flags === 1).length >= 30, 'audio frames are flags 1')
  t.ok(video.some((p) => p.pts > p.dts), 'pts carries the composition offset (B-frames)')
  const Context = require('node-media-server/src/core/context.js') as { broadcasts: Map<string, { rtmpGopCache: unknown }> }
  t.equal(Context.broadcasts.get('/live/contract')?.rtmpGopCache ?? null, null, "node-media-server's own GOP cache never ran")
  t.ok(nmsLines.length > 0, 'its log lines reach our sink')
})
