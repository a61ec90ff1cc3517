/**
 * H.264 decoder configuration: the AVCDecoderConfigurationRecord of the FLV sequence header (ISO/IEC 14496-15
 * 5.3.3.1), and from its first SPS (ITU-T H.264 7.3.2.1.1) the picture size and frame rate the playlists announce.
 */
import { UnsupportedMediaError } from './flv.js'

export interface AvcConfig {
  /** The record as received: it goes into `avcC` unchanged. */
  record: Buffer
  /** RFC 6381 `avc1.PPCCLL` from the record's profile, compatibility and level bytes. */
  codec: string
  /** Bytes of the NALU length prefix in each sample (AVCC framing passes through to `mdat` as is). */
  nalLengthSize: number
  width: number
  height: number
  /** From the SPS VUI timing, when the encoder wrote it. */
  frameRate?: number
}

/** Reads bits MSB first, exp-Golomb included, over an RBSP (emulation prevention bytes already removed). */
export class BitReader {
  private pos = 0
  constructor(private readonly buf: Buffer) {}

  bit(): number {
    const byte = this.buf[this.pos >> 3]
    if (byte === undefined) throw new UnsupportedMediaError('malformed H.264 SPS: truncated')
    const v = (byte >> (7 - (this.pos & 7))) & 1
    this.pos++
    return v
  }

  bits(n: number): number {
    let v = 0
    for (let i = 0; i < n; i++) v = v * 2 + this.bit()
    return v
  }

  /** ue(v) */
  ue(): number {
    let zeros = 0
    while (this.bit() === 0) {
      if (++zeros > 31) throw new UnsupportedMediaError('malformed H.264 SPS: exp-Golomb code too long')
    }
    return 2 ** zeros - 1 + this.bits(zeros)
  }

  /** se(v) */
  se(): number {
    const k = this.ue()
    return k & 1 ? (k + 1) / 2 : -(k / 2)
  }
}

/** NAL payload without its emulation prevention bytes (00 00 03 -> 00 00). */
export function unescapeRbsp(nal: Buffer): Buffer {
  const out = Buffer.allocUnsafe(nal.length)
  let n = 0
  let zeros = 0
  for (const b of nal) {
    if (zeros >= 2 && b === 3) {
      zeros = 0
      continue
    }
    zeros = b === 0 ? zeros + 1 : 0
    out[n++] = b
  }
  return out.subarray(0, n)
}

const hex2 = (v: number): string => v.toString(16).padStart(2, '0')
// Profiles whose SPS carries chroma format, bit depths and scaling matrices.
const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135])

export interface SpsInfo {
  width: number
  height: number
  frameRate?: number
}

export function parseSps(nal: Buffer): SpsInfo {
  // Skip the one-byte NAL header.
  const r = new BitReader(unescapeRbsp(nal.subarray(1)))
  const profile = r.bits(8)
  r.bits(16) // constraint flags, level
  r.ue() // seq_parameter_set_id
  let chromaFormat = 1
  let separateColourPlanes = 0
  if (HIGH_PROFILES.has(profile)) {
    chromaFormat = r.ue()
    if (chromaFormat === 3) separateColourPlanes = r.bit()
    r.ue() // bit_depth_luma_minus8
    r.ue() // bit_depth_chroma_minus8
    r.bit() // qpprime_y_zero_transform_bypass_flag
    if (r.bit()) {
      for (let i = 0; i < (chromaFormat === 3 ? 12 : 8); i++) if (r.bit()) skipScalingList(r, i < 6 ? 16 : 64)
    }
  }
  r.ue() // log2_max_frame_num_minus4
  const pocType = r.ue()
  if (pocType === 0) r.ue()
  else if (pocType === 1) {
    r.bit()
    r.se()
    r.se()
    const cycle = r.ue()
    for (let i = 0; i < cycle; i++) r.se()
  }
  r.ue() // max_num_ref_frames
  r.bit() // gaps_in_frame_num_value_allowed_flag
  const widthMbs = r.ue() + 1
  const heightMapUnits = r.ue() + 1
  const frameMbsOnly = r.bit()
  if (!frameMbsOnly) r.bit() // mb_adaptive_frame_field_flag
  r.bit() // direct_8x8_inference_flag
  let crop = [0, 0, 0, 0]
  if (r.bit()) crop = [r.ue(), r.ue(), r.ue(), r.ue()]
  // Crop units (7-19, 7-20): in chroma samples, doubled vertically for field coding.
  const chromaArrayType = separateColourPlanes ? 0 : chromaFormat
  const subWidth = chromaArrayType === 1 || chromaArrayType === 2 ? 2 : 1
  const subHeight = chromaArrayType === 1 ? 2 : 1
  const cropX = chromaArrayType === 0 ? 1 : subWidth
  const cropY = (chromaArrayType === 0 ? 1 : subHeight) * (2 - frameMbsOnly)
  const [left, right, top, bottom] = crop as [number, number, number, number]
  const info: SpsInfo = {
    width: widthMbs * 16 - cropX * (left + right),
    height: (2 - frameMbsOnly) * heightMapUnits * 16 - cropY * (top + bottom)
  }
  if (r.bit()) {
    const frameRate = vuiFrameRate(r)
    if (frameRate) info.frameRate = frameRate
  }
  return info
}

function skipScalingList(r: BitReader, size: number): void {
  let last = 8
  let next = 8
  for (let j = 0; j < size; j++) {
    if (next !== 0) next = (last + r.se() + 256) % 256
    last = next === 0 ? last : next
  }
}

/** Frame rate from the VUI timing info (E.1.1), or undefined; a VUI cut short is no reason to refuse a stream. */
function vuiFrameRate(r: BitReader): number | undefined {
  try {
    if (r.bit() && r.bits(8) === 255) r.bits(32) // aspect_ratio_idc, extended SAR
    if (r.bit()) r.bit() // overscan
    if (r.bit()) {
      r.bits(4) // video_format, video_full_range_flag
      if (r.bit()) r.bits(24) // colour description
    }
    if (r.bit()) {
      r.ue()
      r.ue()
    }
    if (!r.bit()) return undefined
    const unitsInTick = r.bits(32)
    const timeScale = r.bits(32)
    // Two ticks per frame (field-based timing).
    return unitsInTick > 0 ? Math.round((timeScale / (2 * unitsInTick)) * 1000) / 1000 : undefined
  } catch {
    return undefined
  }
}

export function parseAvcConfig(record: Buffer): AvcConfig {
  if (record.length < 7 || record[0] !== 1) throw new UnsupportedMediaError('malformed AVC decoder configuration record')
  const spsCount = (record[5] as number) & 0x1f
  const spsLength = record.readUInt16BE(6)
  if (spsCount < 1 || record.length < 8 + spsLength) throw new UnsupportedMediaError('AVC decoder configuration without an SPS')
  const sps = parseSps(record.subarray(8, 8 + spsLength))
  const config: AvcConfig = {
    record: Buffer.from(record),
    codec: `avc1.${hex2(record[1] as number)}${hex2(record[2] as number)}${hex2(record[3] as number)}`,
    nalLengthSize: ((record[4] as number) & 0x03) + 1,
    width: sps.width,
    height: sps.height
  }
  if (sps.frameRate) config.frameRate = sps.frameRate
  return config
}
