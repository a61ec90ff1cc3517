/**
 * FLV tag bodies as node-media-server hands them over (`AVPacket.data`): only what the CMAF packager needs.
 * Codec detection reads the bytes, not NMS's `flags`: NMS flags an AVC end-of-sequence tag as a keyframe and gives
 * every non-AAC audio format the same flag as an AAC frame.
 */

/** The shape of node-media-server's `AVPacket` that the packager reads. */
export interface MediaPacket {
  /** 8 audio, 9 video, 18 script data. */
  codec_type: number
  flags: number
  /** Milliseconds, from the FLV tag timestamp (32 bits; NMS reads it as a signed int). */
  dts: number
  pts: number
  /**
   * The tag body. NMS passes its parser's reused buffer, which is usually longer than the tag: `size` says how much
   * of it is the tag. Read synchronously; copy what is kept.
   */
  data: Buffer
  size?: number
}

export const TAG_AUDIO = 8
export const TAG_VIDEO = 9

const CODEC_H264 = 7
const SOUND_AAC = 10

/** A codec or a header the packager cannot package: the caller logs it and refuses the publish. */
export class UnsupportedMediaError extends Error {
  override readonly name = 'UnsupportedMediaError'
}

export type VideoTag =
  | { type: 'config'; body: Buffer }
  | { type: 'frame'; key: boolean; /** ms, signed */ cts: number; body: Buffer }
  | { type: 'skip' }

export type AudioTag = { type: 'config'; body: Buffer } | { type: 'frame'; body: Buffer } | { type: 'skip' }

const bodyOf = (p: MediaPacket, prefix: number): Buffer => p.data.subarray(prefix, p.size ?? p.data.length)

/** Video tag: `[frame type:4 codec id:4][AVCPacketType][composition time: 24 bits, signed]`, then AVCC data. */
export function parseVideoTag(p: MediaPacket): VideoTag {
  const size = p.size ?? p.data.length
  if (size < 1) return { type: 'skip' }
  const b0 = p.data[0] as number
  // Enhanced RTMP (bit 7 set) carries HEVC, AV1, VP9 by FourCC: none of them is H.264.
  if (b0 & 0x80) throw new UnsupportedMediaError('video codec: enhanced RTMP (HEVC/AV1/VP9), only H.264 is supported')
  const codecId = b0 & 0x0f
  if (codecId !== CODEC_H264) throw new UnsupportedMediaError(`video codec id ${codecId}, only H.264 (7) is supported`)
  const frameType = (b0 >> 4) & 0x07
  // Frame type 5 is a video info/command frame: no picture.
  if (frameType === 5 || size < 5) return { type: 'skip' }
  const packetType = p.data[1] as number
  if (packetType === 0) return { type: 'config', body: bodyOf(p, 5) }
  // 2 is an end of sequence (NMS flags it as a keyframe): nothing to decode.
  if (packetType !== 1 || size === 5) return { type: 'skip' }
  // NMS reads the composition time unsigned; B-frames from some encoders need it signed.
  const cts = (p.data.readUIntBE(2, 3) << 8) >> 8
  return { type: 'frame', key: frameType === 1, cts, body: bodyOf(p, 5) }
}

/** Audio tag: `[sound format:4 rate:2 size:1 type:1][AACPacketType]`, then the AudioSpecificConfig or a raw frame. */
export function parseAudioTag(p: MediaPacket): AudioTag {
  const size = p.size ?? p.data.length
  if (size < 1) return { type: 'skip' }
  const format = (p.data[0] as number) >> 4
  if (format !== SOUND_AAC) throw new UnsupportedMediaError(`audio sound format ${format}, only AAC (10) is supported`)
  if (size < 3) return { type: 'skip' }
  return p.data[1] === 0 ? { type: 'config', body: bodyOf(p, 2) } : { type: 'frame', body: bodyOf(p, 2) }
}
