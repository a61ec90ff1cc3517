import type { MediaPacket } from '../../../src/media/flv.js'

/**
 * Reads an FLV file into packets shaped like node-media-server's `AVPacket` (flags as `Flv.parserTag` sets them),
 * delivered one at a time through a callback with the SAME reused, oversized `data` buffer, as NMS's parser does:
 * a packager that keeps a reference instead of a copy gets garbage.
 */
export function forEachFlvPacket(file: Buffer, onPacket: (p: MediaPacket) => void): number {
  if (file.toString('latin1', 0, 3) !== 'FLV') throw new Error('not an FLV file')
  const shared = Buffer.alloc(1024 * 1024)
  let pos = file.readUInt32BE(5) + 4
  let count = 0
  while (pos + 11 <= file.length) {
    const type = file[pos] as number
    const size = file.readUIntBE(pos + 1, 3)
    // Read as NMS does: a signed 32-bit value, extended byte last.
    const time = (file.readUIntBE(pos + 4, 3) | ((file[pos + 7] as number) << 24)) | 0
    const body = file.subarray(pos + 11, pos + 11 + size)
    pos += 11 + size + 4
    if (type !== 8 && type !== 9 && type !== 18) continue
    shared.fill(0xee)
    body.copy(shared)
    const packet: MediaPacket = { codec_type: type, flags: flagsOf(type, body), dts: time, pts: time, data: shared, size }
    if (type === 9) packet.pts = time + body.readUIntBE(2, 3)
    onPacket(packet)
    count++
  }
  return count
}

function flagsOf(type: number, body: Buffer): number {
  if (type === 18) return 5
  if (type === 8) return body[0] !== undefined && body[0] >> 4 === 10 && body[1] === 0 ? 0 : 1
  if (((body[0] as number) & 0x0f) !== 7) return 4
  if (body[1] === 0) return 2
  return ((body[0] as number) >> 4) === 1 ? 3 : 4
}

/** Builds FLV tag bodies by hand, for cases a real encoder does not produce (negative composition times, jitter). */
export const tag = {
  video(o: { key: boolean; cts?: number; type?: number; payload?: Buffer; dts: number }): MediaPacket {
    const payload = o.payload ?? Buffer.from([0, 0, 0, 2, 0x09, 0xf0])
    const data = Buffer.alloc(5 + payload.length)
    data[0] = (o.key ? 0x10 : 0x20) | 7
    data[1] = o.type ?? 1
    data.writeIntBE(o.cts ?? 0, 2, 3)
    payload.copy(data, 5)
    return { codec_type: 9, flags: o.type === 0 ? 2 : o.key ? 3 : 4, dts: o.dts, pts: o.dts + (o.cts ?? 0), data }
  },
  videoConfig(record: Buffer, dts = 0): MediaPacket {
    const data = Buffer.concat([Buffer.from([0x17, 0, 0, 0, 0]), record])
    return { codec_type: 9, flags: 2, dts, pts: dts, data }
  },
  audio(o: { dts: number; payload?: Buffer }): MediaPacket {
    const payload = o.payload ?? Buffer.from([0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c])
    return { codec_type: 8, flags: 1, dts: o.dts, pts: o.dts, data: Buffer.concat([Buffer.from([0xaf, 1]), payload]) }
  },
  audioConfig(asc: Buffer, dts = 0): MediaPacket {
    return { codec_type: 8, flags: 0, dts, pts: dts, data: Buffer.concat([Buffer.from([0xaf, 0]), asc]) }
  }
}
