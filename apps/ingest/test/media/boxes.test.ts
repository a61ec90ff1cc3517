import t from 'tap'
import { audioInitSegment, SAMPLE_NON_SYNC, SAMPLE_SYNC, videoInitSegment, writeFragment, type FragmentSample } from '../../src/media/boxes.js'
import { find, parseTrun, readBoxes, tfdt, type Box } from './helpers/boxes.js'

const AVCC = Buffer.from('0142c00dffe100166742c00dda0507ec0440000003004000000c83c50aa801000468ce0fc8', 'hex')

t.test('video init: ftyp, then moov with one avc1 track (record as avcC), 90 kHz, mvex/trex', async (t) => {
  const init = videoInitSegment({ timescale: 90000, width: 320, height: 240, avcC: AVCC })
  const boxes = readBoxes(init)
  t.same(boxes.map((b) => b.type), ['ftyp', 'moov'])
  const ftyp = boxes[0]?.body as Buffer
  t.equal(ftyp.toString('latin1', 0, 4), 'iso6')
  t.match(ftyp.toString('latin1', 8), /cmfc/)
  const moov = boxes[1]?.children ?? []
  t.same(moov.map((b) => b.type), ['mvhd', 'trak', 'mvex'])
  t.equal(find(moov, 'trak/mdia/mdhd')?.body.readUInt32BE(12), 90000, 'timescale')
  t.equal(find(moov, 'trak/mdia/hdlr')?.body.toString('latin1', 8, 12), 'vide')
  const tkhd = find(moov, 'trak/tkhd')?.body as Buffer
  t.same([tkhd.readUInt32BE(12), tkhd.readUInt32BE(76) / 65536, tkhd.readUInt32BE(80) / 65536], [1, 320, 240], 'track 1, 320x240')
  const stsd = find(moov, 'trak/mdia/minf/stbl/stsd')?.body as Buffer
  t.equal(stsd.readUInt32BE(4), 1, 'one sample entry')
  const [avc1] = readBoxes(stsd.subarray(8))
  t.equal(avc1?.type, 'avc1')
  t.same([avc1?.body.readUInt16BE(24), avc1?.body.readUInt16BE(26)], [320, 240])
  const [avcC] = readBoxes((avc1?.body as Buffer).subarray(78))
  t.same([avcC?.type, avcC?.body.equals(AVCC)], ['avcC', true])
  const trex = find(moov, 'mvex/trex')?.body as Buffer
  t.same([trex.readUInt32BE(4), trex.readUInt32BE(8)], [1, 1], 'trex: track 1, sample description 1')
})

t.test('audio init: mp4a with an esds carrying the AudioSpecificConfig, timescale = sample rate', async (t) => {
  const asc = Buffer.from('1190', 'hex')
  const init = audioInitSegment({ timescale: 48000, sampleRate: 48000, channels: 2, asc })
  const moov = readBoxes(init)[1]?.children ?? []
  t.equal(find(moov, 'trak/mdia/mdhd')?.body.readUInt32BE(12), 48000)
  t.equal(find(moov, 'trak/mdia/hdlr')?.body.toString('latin1', 8, 12), 'soun')
  t.ok(find(moov, 'trak/mdia/minf/smhd'))
  const stsd = find(moov, 'trak/mdia/minf/stbl/stsd')?.body as Buffer
  const mp4a = readBoxes(stsd.subarray(8))[0] as Box
  t.same([mp4a.type, mp4a.body.readUInt16BE(16), mp4a.body.readUInt32BE(24) / 65536], ['mp4a', 2, 48000])
  const [esds] = readBoxes(mp4a.body.subarray(28))
  t.equal(esds?.type, 'esds')
  const body = esds?.body as Buffer
  const at = body.indexOf(Buffer.from([0x05, 2]))
  t.ok(at > 0 && body.subarray(at + 2, at + 4).equals(asc), 'DecoderSpecificInfo is the ASC')
  t.equal(body[body.indexOf(0x04, 4) + 2], 0x40, 'MPEG-4 audio')
})

const payloads = [Buffer.from('aaaa', 'hex'), Buffer.from('bbbbbb', 'hex'), Buffer.from('cc', 'hex')]
const frag = (video: boolean, samples: FragmentSample[], base: number, sequence = 7): Buffer =>
  writeFragment({ sequence, baseMediaDecodeTime: base, samples, video, copy: (i, target, offset) => (payloads[i] as Buffer).copy(target, offset) })

t.test('video fragment: moof (mfhd, traf: tfhd default-base-is-moof, tfdt v1, trun v1) + mdat, data offset on the payload', async (t) => {
  const samples: FragmentSample[] = [
    { duration: 3600, size: 2, flags: SAMPLE_SYNC, cto: 7200 },
    { duration: 3600, size: 3, flags: SAMPLE_NON_SYNC, cto: -3600 },
    { duration: 3601, size: 1, flags: SAMPLE_NON_SYNC, cto: 0 }
  ]
  const base = 2 ** 32 + 12345 // past 13 hours of 90 kHz
  const buf = frag(true, samples, base)
  const boxes = readBoxes(buf)
  t.same(boxes.map((b) => b.type), ['moof', 'mdat'])
  t.equal(find(boxes, 'moof/mfhd')?.body.readUInt32BE(4), 7, 'sequence number')
  const tfhd = find(boxes, 'moof/traf/tfhd')?.body as Buffer
  t.same([tfhd.readUInt32BE(0), tfhd.readUInt32BE(4)], [0x020000, 1])
  const tfdtBox = find(boxes, 'moof/traf/tfdt')
  t.equal(tfdtBox?.body[0], 1, 'tfdt version 1')
  t.equal(tfdt(tfdtBox as never), base)
  const trun = parseTrun(find(boxes, 'moof/traf/trun') as never)
  t.equal(trun.version, 1, 'signed composition offsets')
  t.same(trun.samples, samples.map(({ duration, size, flags, cto }) => ({ duration, size, flags, cto })))
  const mdat = boxes[1]
  t.equal((boxes[0]?.start ?? 0) + trun.dataOffset, (mdat?.start ?? 0) + 8, 'data offset = first payload byte')
  t.same(mdat?.body.toString('hex'), 'aaaabbbbbbcc')
  t.equal(buf.length, (boxes[0]?.size ?? 0) + (mdat?.size ?? 0))
})

t.test('audio fragment: trun without flags and offsets (every sample is sync by trex)', async (t) => {
  const samples = [1024, 1024, 1024].map((d, i) => ({ duration: d, size: (payloads[i] as Buffer).length, flags: SAMPLE_SYNC, cto: 0 }))
  const boxes = readBoxes(frag(false, samples, 48000))
  const trun = parseTrun(find(boxes, 'moof/traf/trun') as never)
  t.same([trun.version, trun.flags], [0, 0x301])
  t.same(trun.samples, samples.map(({ duration, size }) => ({ duration, size })))
  t.equal(tfdt(find(boxes, 'moof/traf/tfdt') as never), 48000)
})
