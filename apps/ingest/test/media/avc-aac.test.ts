import t from 'tap'
import { parseAudioSpecificConfig } from '../../src/media/aac.js'
import { BitReader, parseAvcConfig, unescapeRbsp } from '../../src/media/avc.js'
import { UnsupportedMediaError } from '../../src/media/flv.js'

// AVCDecoderConfigurationRecords as x264 (ffmpeg 5.1) writes them into FLV sequence headers.
const RECORDS = {
  high1080: '01640028ffe1001b67640028acd940780227e5c044000003000400000300f03c60c65801000468ef8fcbfdf8f800',
  crop322x242ntsc: '0164000dffe100196764000dacd94150878888c04400000fa40003a9803c50a65801000468ef8fcbfdf8f800',
  interlaced320x240: '01640015ffe1001a67640015acd941410fcb808800000300080000030190f8a14cb001000468fe8fcbfdf8f800',
  baseline320x240: '0142c00dffe100166742c00dda0507ec0440000003004000000c83c50aa801000468ce0fc8'
}

t.test('SPS: 1080p is 1088 coded lines cropped to 1080; codec string from profile, constraints, level', async (t) => {
  const c = parseAvcConfig(Buffer.from(RECORDS.high1080, 'hex'))
  t.same([c.width, c.height, c.codec, c.nalLengthSize, c.frameRate], [1920, 1080, 'avc1.640028', 4, 30])
})

t.test('SPS: cropping on both axes (322x242) and a 30000/1001 frame rate from the VUI', async (t) => {
  const c = parseAvcConfig(Buffer.from(RECORDS.crop322x242ntsc, 'hex'))
  t.same([c.width, c.height, c.codec], [322, 242, 'avc1.64000d'])
  t.equal(c.frameRate, 29.97)
})

t.test('SPS: field coding (frame_mbs_only_flag 0) counts map units twice', async (t) => {
  const c = parseAvcConfig(Buffer.from(RECORDS.interlaced320x240, 'hex'))
  t.same([c.width, c.height, c.codec], [320, 240, 'avc1.640015'])
})

t.test('SPS: baseline profile (no chroma format fields)', async (t) => {
  const c = parseAvcConfig(Buffer.from(RECORDS.baseline320x240, 'hex'))
  t.same([c.width, c.height, c.codec], [320, 240, 'avc1.42c00d'])
})

t.test('exp-Golomb: ue and se codes', async (t) => {
  // 1 | 010 | 011 | 00100 | 00101 | 011 (se -1) | 010 (se +1), padded.
  const r = new BitReader(Buffer.from([0b10100110, 0b01000010, 0b10110100]))
  t.same([r.ue(), r.ue(), r.ue(), r.ue(), r.ue(), r.se(), r.se()], [0, 1, 2, 3, 4, -1, 1])
})

t.test('emulation prevention bytes are removed before the SPS is read', async (t) => {
  t.same([...unescapeRbsp(Buffer.from([0, 0, 3, 1, 0, 0, 3, 0, 0, 3]))], [0, 0, 1, 0, 0, 0, 0])
})

t.test('a truncated or foreign record is an UnsupportedMediaError', async (t) => {
  t.throws(() => parseAvcConfig(Buffer.from('0164', 'hex')), UnsupportedMediaError)
  t.throws(() => parseAvcConfig(Buffer.from(RECORDS.high1080.slice(0, 30), 'hex')), UnsupportedMediaError)
  t.throws(() => parseAvcConfig(Buffer.from('0264000dffe1000467640028', 'hex')), UnsupportedMediaError)
})

t.test('AudioSpecificConfig: rate, channels and codec string', async (t) => {
  const cases: [string, number, number, string][] = [
    ['1190', 48000, 2, 'mp4a.40.2'],
    ['1210', 44100, 2, 'mp4a.40.2'],
    ['1188', 48000, 1, 'mp4a.40.2'],
    ['1408', 16000, 1, 'mp4a.40.2'],
    // HE-AAC, explicit: object type 5, core 24 kHz.
    ['2b092000', 24000, 1, 'mp4a.40.5'],
    // Frequency index 15: an explicit 24-bit rate (here 32000).
    ['17803e8010', 32000, 2, 'mp4a.40.2']
  ]
  for (const [hex, rate, channels, codec] of cases) {
    const c = parseAudioSpecificConfig(Buffer.from(hex, 'hex'))
    t.same([c.sampleRate, c.channels, c.codec], [rate, channels, codec], hex)
  }
  t.throws(() => parseAudioSpecificConfig(Buffer.from('12', 'hex')), UnsupportedMediaError)
  t.throws(() => parseAudioSpecificConfig(Buffer.from('1690', 'hex')), UnsupportedMediaError, 'frequency index 13 is reserved')
})
