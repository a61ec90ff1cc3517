/**
 * FLV files joined at the tag level, for a publisher whose stream changes mid-way as no single ffmpeg run produces:
 * the second file's sequence headers arrive in the middle of the first's timeline (a true in-stream SPS change).
 */

interface FlvTag {
  type: number
  /** ms, the 24-bit timestamp and its extension byte. */
  time: number
  /** The whole tag: header, body and the previous-tag-size that follows it. */
  bytes: Buffer
  body: Buffer
}

function readTags(file: Buffer): { header: Buffer; tags: FlvTag[] } {
  if (file.toString('latin1', 0, 3) !== 'FLV') throw new Error('not an FLV file')
  const start = file.readUInt32BE(5) + 4
  const tags: FlvTag[] = []
  let pos = start
  while (pos + 11 <= file.length) {
    const size = file.readUIntBE(pos + 1, 3)
    const time = (file.readUIntBE(pos + 4, 3) | ((file[pos + 7] as number) << 24)) >>> 0
    tags.push({ type: file[pos] as number, time, bytes: file.subarray(pos, pos + 15 + size), body: file.subarray(pos + 11, pos + 11 + size) })
    pos += 15 + size
  }
  return { header: file.subarray(0, start), tags }
}

const isEndOfSequence = (t: FlvTag): boolean => t.type === 9 && t.body[1] === 2

/**
 * `first` then `second`, one timeline: the second's tags shifted to follow the first's last tag by `gapMs`. The
 * first's end-of-sequence tag and the second's script data (onMetaData) are left out, so the only sign of the
 * change is the new sequence header before the second's first keyframe, as from an encoder reconfigured live.
 */
export function spliceFlv(first: Buffer, second: Buffer, gapMs = 40): Buffer {
  const a = readTags(first)
  const b = readTags(second)
  const shift = Math.max(0, ...a.tags.map((t) => t.time)) + gapMs
  const out: Buffer[] = [a.header]
  for (const t of a.tags) if (!isEndOfSequence(t)) out.push(t.bytes)
  for (const t of b.tags) {
    if (t.type === 18) continue
    const copy = Buffer.from(t.bytes)
    const time = (t.time + shift) >>> 0
    copy.writeUIntBE(time & 0xffffff, 4, 3)
    copy[7] = time >>> 24
    out.push(copy)
  }
  return Buffer.concat(out)
}
