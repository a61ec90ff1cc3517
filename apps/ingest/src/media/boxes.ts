/**
 * ISO BMFF boxes for CMAF: one init segment per track (ftyp + moov with mvex/trex) and fragments (moof + mdat).
 * Every track is its own CMAF track with track id 1 in its own init segment: DASH wants one adaptation set per kind
 * and hls.js reads audio as a separate rendition.
 *
 * Init segments are rare and built with small concatenations; fragments are hot: their size is computed first and
 * one Buffer is written in place, sample payloads copied once.
 */

const TRACK_ID = 1
/** `sample_depends_on = 2` (an I picture). */
export const SAMPLE_SYNC = 0x02000000
/** `sample_depends_on = 1`, `sample_is_non_sync_sample = 1`. */
export const SAMPLE_NON_SYNC = 0x01010000

function box(type: string, ...payload: Buffer[]): Buffer {
  const size = 8 + payload.reduce((n, b) => n + b.length, 0)
  const head = Buffer.alloc(8)
  head.writeUInt32BE(size, 0)
  head.write(type, 4, 'latin1')
  return Buffer.concat([head, ...payload], size)
}

function fullBox(type: string, version: number, flags: number, ...payload: Buffer[]): Buffer {
  const vf = Buffer.alloc(4)
  vf.writeUInt32BE(((version << 24) | flags) >>> 0, 0)
  return box(type, vf, ...payload)
}

const u32 = (...values: number[]): Buffer => {
  const b = Buffer.alloc(values.length * 4)
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, i * 4))
  return b
}

const MATRIX = u32(0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)

function ftyp(): Buffer {
  // cmfc: a CMAF track; iso6 for tfdt v1 / trun v1 and default-base-is-moof.
  return box('ftyp', Buffer.from('iso6'), u32(0), Buffer.from('iso6cmfcmp41dash', 'latin1'))
}

function mvhd(): Buffer {
  return fullBox('mvhd', 0, 0, u32(0, 0, 1000, 0, 0x00010000), Buffer.from([1, 0, 0, 0]), u32(0, 0), MATRIX, Buffer.alloc(24), u32(TRACK_ID + 1))
}

function tkhd(width: number, height: number, audio: boolean): Buffer {
  // Flags 3: enabled, in movie. Volume 1.0 for audio; size in 16.16 for video.
  return fullBox('tkhd', 0, 3, u32(0, 0, TRACK_ID, 0, 0, 0, 0), Buffer.from([0, 0, 0, 0, audio ? 1 : 0, 0, 0, 0]), MATRIX, u32(width * 65536, height * 65536))
}

function mdhd(timescale: number): Buffer {
  // Language `und`, packed ISO-639-2/T.
  return fullBox('mdhd', 0, 0, u32(0, 0, timescale, 0), Buffer.from([0x55, 0xc4, 0, 0]))
}

function hdlr(audio: boolean): Buffer {
  const name = audio ? 'SoundHandler' : 'VideoHandler'
  return fullBox('hdlr', 0, 0, u32(0), Buffer.from(audio ? 'soun' : 'vide'), Buffer.alloc(12), Buffer.from(`${name}\0`))
}

function stbl(sampleEntry: Buffer): Buffer {
  // Fragmented: the sample tables are empty, the samples are in the fragments.
  return box('stbl', fullBox('stsd', 0, 0, u32(1), sampleEntry), fullBox('stts', 0, 0, u32(0)), fullBox('stsc', 0, 0, u32(0)), fullBox('stsz', 0, 0, u32(0, 0)), fullBox('stco', 0, 0, u32(0)))
}

function init(timescale: number, width: number, height: number, audio: boolean, sampleEntry: Buffer, defaultFlags: number): Buffer {
  const dinf = box('dinf', fullBox('dref', 0, 0, u32(1), fullBox('url ', 0, 1)))
  const mediaHeader = audio ? fullBox('smhd', 0, 0, u32(0)) : fullBox('vmhd', 0, 1, Buffer.alloc(8))
  const minf = box('minf', mediaHeader, dinf, stbl(sampleEntry))
  const trak = box('trak', tkhd(width, height, audio), box('mdia', mdhd(timescale), hdlr(audio), minf))
  const mvex = box('mvex', fullBox('trex', 0, 0, u32(TRACK_ID, 1, 0, 0, defaultFlags)))
  return Buffer.concat([ftyp(), box('moov', mvhd(), trak, mvex)])
}

/** Init segment of an H.264 track: `avc1` with the FLV sequence header's record as `avcC`. */
export function videoInitSegment(o: { timescale: number; width: number; height: number; avcC: Buffer }): Buffer {
  const entry = Buffer.alloc(78)
  entry.writeUInt16BE(1, 6) // data_reference_index
  entry.writeUInt16BE(o.width, 24)
  entry.writeUInt16BE(o.height, 26)
  entry.writeUInt32BE(0x00480000, 28) // 72 dpi
  entry.writeUInt32BE(0x00480000, 32)
  entry.writeUInt16BE(1, 40) // frame_count
  entry.writeUInt16BE(0x0018, 74) // depth
  entry.writeInt16BE(-1, 76)
  return init(o.timescale, o.width, o.height, false, box('avc1', entry, box('avcC', o.avcC)), SAMPLE_NON_SYNC)
}

/** Init segment of an AAC track: `mp4a` with an `esds` carrying the AudioSpecificConfig. */
export function audioInitSegment(o: { timescale: number; sampleRate: number; channels: number; asc: Buffer }): Buffer {
  const entry = Buffer.alloc(28)
  entry.writeUInt16BE(1, 6)
  entry.writeUInt16BE(o.channels, 16)
  entry.writeUInt16BE(16, 18) // sample size
  // 16.16 fixed point: rates above 65535 do not fit; the timescale and the AudioSpecificConfig still say it.
  entry.writeUInt32BE(o.sampleRate < 65536 ? o.sampleRate * 65536 : 0, 24)
  const asc = o.asc
  const decSpecific = Buffer.concat([Buffer.from([0x05, asc.length]), asc])
  // objectTypeIndication 0x40 (MPEG-4 audio), streamType 5 (audio) << 2 | 1; buffer size and bitrates unknown.
  const decConfig = Buffer.concat([Buffer.from([0x04, 13 + decSpecific.length, 0x40, 0x15]), Buffer.alloc(11), decSpecific])
  const slConfig = Buffer.from([0x06, 1, 2])
  const es = Buffer.concat([Buffer.from([0x03, 3 + decConfig.length + slConfig.length, 0, 0, 0]), decConfig, slConfig])
  return init(o.timescale, 0, 0, true, box('mp4a', entry, fullBox('esds', 0, 0, es)), SAMPLE_SYNC)
}

/** One sample of a fragment. Payload bytes are located by the caller's `copy`. */
export interface FragmentSample {
  duration: number
  size: number
  /** `SAMPLE_SYNC` or `SAMPLE_NON_SYNC`. */
  flags: number
  /** Composition offset (pts - dts) in the track's timescale, may be negative. */
  cto: number
}

export interface FragmentOptions {
  sequence: number
  baseMediaDecodeTime: number
  samples: readonly FragmentSample[]
  /** Video: per-sample flags and signed composition offsets (trun version 1). Audio: all samples are sync. */
  video: boolean
  /** Copies sample `i`'s payload into `target` at `offset`. */
  copy: (i: number, target: Buffer, offset: number) => void
}

const TFHD_DEFAULT_BASE_IS_MOOF = 0x020000
const TRUN_DATA_OFFSET = 0x000001
const TRUN_DURATION = 0x000100
const TRUN_SIZE = 0x000200
const TRUN_FLAGS = 0x000400
const TRUN_CTO = 0x000800

/** `moof` + `mdat` in one allocation. */
export function writeFragment(o: FragmentOptions): Buffer {
  const n = o.samples.length
  const perSample = o.video ? 16 : 8
  const trunSize = 20 + n * perSample
  const trafSize = 8 + 16 + 20 + trunSize
  const moofSize = 8 + 16 + trafSize
  let payload = 0
  for (const s of o.samples) payload += s.size
  const out = Buffer.allocUnsafe(moofSize + 8 + payload)
  let p = 0
  const head = (size: number, type: string): void => {
    out.writeUInt32BE(size, p)
    out.write(type, p + 4, 'latin1')
    p += 8
  }
  const word = (v: number): void => {
    out.writeUInt32BE(v >>> 0, p)
    p += 4
  }
  head(moofSize, 'moof')
  head(16, 'mfhd')
  word(0)
  word(o.sequence)
  head(trafSize, 'traf')
  head(16, 'tfhd')
  word(TFHD_DEFAULT_BASE_IS_MOOF)
  word(TRACK_ID)
  head(20, 'tfdt')
  word(0x01000000) // version 1: a 64-bit time, 90 kHz passes 2^32 after 13 hours
  word(Math.floor(o.baseMediaDecodeTime / 2 ** 32))
  word(o.baseMediaDecodeTime % 2 ** 32)
  head(trunSize, 'trun')
  word(o.video ? 0x01000000 | TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS | TRUN_CTO : TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE)
  word(n)
  word(moofSize + 8) // data offset from the moof start: the first payload byte after the mdat header
  for (const s of o.samples) {
    word(s.duration)
    word(s.size)
    if (o.video) {
      word(s.flags)
      out.writeInt32BE(s.cto, p)
      p += 4
    }
  }
  head(8 + payload, 'mdat')
  for (let i = 0; i < n; i++) {
    o.copy(i, out, p)
    p += (o.samples[i] as FragmentSample).size
  }
  return out
}
