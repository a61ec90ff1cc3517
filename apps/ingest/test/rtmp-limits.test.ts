import t from 'tap'
import { createRequire } from 'node:module'
import { allowPublisher, installRtmpLimits, limitsFor, PRE_PUBLISH_LIMITS, PUBLISHER_LIMITS, RtmpLimitError } from '../src/rtmp-limits.js'
import { NMS_VERSION } from '../src/nms.js'

// The contract of the adapter with node-media-server's parser: pinned to the version it was read from.
const require = createRequire(import.meta.url)
const { version } = require('node-media-server/package.json') as { version: string }

interface Parser {
  parserData(b: Buffer): string | null
  onOutputCallback: (b: Buffer) => void
  onPacketCallback: (p: { size?: number; codec_type?: number }) => void
  inPackets: Map<number, { capacity: number }>
  inChunkSize: number
}
const Rtmp = require('node-media-server/src/protocol/rtmp.js') as new () => Parser

/** A parser past the plain handshake, as node-media-server's RTMP session holds it (`session.rtmp`). */
function handshaken(): Parser {
  const rtmp = new Rtmp()
  rtmp.onOutputCallback = () => {}
  rtmp.parserData(Buffer.concat([Buffer.from([3]), Buffer.alloc(1536 * 2)]))
  return rtmp
}

/** One chunk: fmt 0, the 1- or 2-byte basic header form, declaring `length`, carrying `body` (at most one chunk's worth). */
function chunk(csid: number, type: number, length: number, body: Buffer): Buffer {
  const basic = csid < 64 ? Buffer.from([csid]) : Buffer.from([0, csid - 64])
  const header = Buffer.alloc(11)
  header.writeUIntBE(length, 3, 3)
  header[6] = type
  return Buffer.concat([basic, header, body])
}

t.test(`the adapter is for node-media-server ${NMS_VERSION}, the version installed`, async (t) => {
  t.equal(version, NMS_VERSION, 'an upgrade must re-read src/protocol/rtmp.js and update rtmp-limits.ts')
  t.doesNotThrow(() => installRtmpLimits(), 'it installs on this version')
  t.doesNotThrow(() => installRtmpLimits(), 'and installing twice is harmless')
})

installRtmpLimits()

t.test('before its publish is accepted, a connection cannot declare a message over 4 KB: refused before any allocation', async (t) => {
  const rtmp = handshaken()
  t.throws(() => rtmp.parserData(chunk(3, 20, 0xffffff, Buffer.alloc(128))), RtmpLimitError)
  t.equal(rtmp.inPackets.get(3)?.capacity ?? 0, 0, 'no buffer was sized by the declared length')
  // The `0x41` flood: fmt 1, 3-byte chunk stream id, 4.3 MB declared.
  t.throws(() => handshaken().parserData(Buffer.alloc(60_000, 0x41)), RtmpLimitError)
  const ok = handshaken()
  t.doesNotThrow(() => ok.parserData(chunk(3, 20, PRE_PUBLISH_LIMITS.maxMessageBytes, Buffer.alloc(128))), 'a 4 KB command is fine')
})

t.test('before its publish is accepted, a connection uses at most 8 chunk streams', async (t) => {
  const rtmp = handshaken()
  for (let i = 0; i < PRE_PUBLISH_LIMITS.maxChunkStreams; i++) rtmp.parserData(chunk(64 + i, 20, 4_096, Buffer.alloc(128)))
  t.equal(rtmp.inPackets.size, 8)
  t.throws(() => rtmp.parserData(chunk(64 + 8, 4, 16, Buffer.alloc(16))), /more than 8 chunk streams/)
})

t.test('a chunk size of 0 or beyond the largest message is refused; 4096 and 60,000 (encoders) are taken', async (t) => {
  const setChunkSize = (n: number) => {
    const body = Buffer.alloc(4)
    body.writeUInt32BE(n)
    return chunk(2, 1, 4, body)
  }
  t.throws(() => handshaken().parserData(setChunkSize(0)), RtmpLimitError)
  t.throws(() => handshaken().parserData(setChunkSize(0x7fffffff)), RtmpLimitError)
  for (const n of [4_096, 60_000]) {
    const rtmp = handshaken()
    rtmp.parserData(setChunkSize(n))
    t.equal(rtmp.inChunkSize, n)
  }
})

t.test('an accepted publisher may send messages up to 4 MB (keyframes) on up to 16 chunk streams, and no more', async (t) => {
  const session = { rtmp: handshaken() }
  t.same(limitsFor(session), PRE_PUBLISH_LIMITS)
  allowPublisher(session)
  t.same(limitsFor(session), PUBLISHER_LIMITS)
  const rtmp = session.rtmp
  const setChunkSize = Buffer.alloc(4)
  setChunkSize.writeUInt32BE(1 << 20)
  rtmp.parserData(chunk(2, 1, 4, setChunkSize))
  const sizes: number[] = []
  rtmp.onPacketCallback = (p) => sizes.push(p.size ?? -1)
  // A 2 MB "keyframe": FLV video tag body (keyframe, AVC NALU) then filler, in 1 MB chunks.
  const frame = Buffer.alloc(2 * 1024 * 1024)
  frame[0] = 0x17
  frame[1] = 1
  const cont = Buffer.from([0xc0 | 6])
  rtmp.parserData(Buffer.concat([chunk(6, 9, frame.length, frame.subarray(0, 1 << 20)), cont, frame.subarray(1 << 20)]))
  t.same(sizes, [frame.length], 'the 2 MB frame went through')
  t.throws(() => rtmp.parserData(chunk(7, 9, PUBLISHER_LIMITS.maxMessageBytes + 1, Buffer.alloc(16))), RtmpLimitError, 'one byte over 4 MB is refused')
  const other = { rtmp: handshaken() }
  allowPublisher(other)
  for (let i = 0; i < 16; i++) other.rtmp.parserData(chunk(64 + i, 4, 16, Buffer.alloc(16)))
  t.throws(() => other.rtmp.parserData(chunk(64 + 16, 4, 16, Buffer.alloc(16))), /more than 16 chunk streams/)
})
