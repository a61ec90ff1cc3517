/** A tiny ISO BMFF reader for tests: enough to check what the packager writes, box by box. */
export interface Box {
  type: string
  start: number
  size: number
  /** The payload (after the 8-byte header). */
  body: Buffer
  children: Box[]
}

const CONTAINERS = new Set(['moov', 'trak', 'mdia', 'minf', 'stbl', 'mvex', 'moof', 'traf', 'dinf'])

export function readBoxes(buf: Buffer, base = 0): Box[] {
  const out: Box[] = []
  let p = 0
  while (p + 8 <= buf.length) {
    const size = buf.readUInt32BE(p)
    if (size < 8 || p + size > buf.length) throw new Error(`bad box size ${size} at ${base + p}`)
    const type = buf.toString('latin1', p + 4, p + 8)
    const body = buf.subarray(p + 8, p + size)
    out.push({ type, start: base + p, size, body, children: CONTAINERS.has(type) ? readBoxes(body, base + p + 8) : [] })
    p += size
  }
  if (p !== buf.length) throw new Error('trailing bytes')
  return out
}

export function find(boxes: Box[], path: string): Box | undefined {
  const [head, ...rest] = path.split('/')
  const b = boxes.find((x) => x.type === head)
  if (!b || rest.length === 0) return b
  return find(b.children, rest.join('/'))
}

export interface Trun {
  version: number
  flags: number
  dataOffset: number
  samples: { duration: number; size: number; flags?: number; cto?: number }[]
}

export function parseTrun(b: Box): Trun {
  const v = b.body.readUInt8(0)
  const flags = b.body.readUIntBE(1, 3)
  const n = b.body.readUInt32BE(4)
  let p = 8
  let dataOffset = 0
  if (flags & 1) {
    dataOffset = b.body.readInt32BE(p)
    p += 4
  }
  if (flags & 4) p += 4
  const samples: Trun['samples'] = []
  for (let i = 0; i < n; i++) {
    const s: Trun['samples'][number] = { duration: 0, size: 0 }
    const next = (signed: boolean): number => {
      const v = signed ? b.body.readInt32BE(p) : b.body.readUInt32BE(p)
      p += 4
      return v
    }
    if (flags & 0x100) s.duration = next(false)
    if (flags & 0x200) s.size = next(false)
    if (flags & 0x400) s.flags = next(false)
    if (flags & 0x800) s.cto = next(v === 1)
    samples.push(s)
  }
  return { version: v, flags, dataOffset, samples }
}

export function tfdt(b: Box): number {
  return b.body[0] === 1 ? b.body.readUInt32BE(4) * 2 ** 32 + b.body.readUInt32BE(8) : b.body.readUInt32BE(4)
}

/** The samples of one part (`moof` + `mdat`) with their decode times. */
export function partSamples(part: Buffer): { dts: number; duration: number; size: number; flags?: number; cto?: number }[] {
  const boxes = readBoxes(part)
  let dts = tfdt(find(boxes, 'moof/traf/tfdt') as Box)
  return parseTrun(find(boxes, 'moof/traf/trun') as Box).samples.map((s) => {
    const out = { ...s, dts }
    dts += s.duration
    return out
  })
}
