/**
 * Sample payloads of one track between node-media-server's reused buffer and the fragment that carries them.
 * Each payload is copied once into a growing byte queue (no allocation per sample: GC and Buffer copies dominated the
 * profile of a first CMAF writer), addressed by a position that never moves, and released once a fragment holds it.
 */
export class SampleStore {
  private buf: Buffer
  /** Stream position of `buf[0]`. */
  private base = 0
  /** Bytes in use from `buf[0]`. */
  private length = 0

  constructor(initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes)
  }

  /** Copies `src` in; returns its position. */
  push(src: Buffer): number {
    if (this.length + src.length > this.buf.length) this.grow(this.length + src.length)
    src.copy(this.buf, this.length)
    const pos = this.base + this.length
    this.length += src.length
    return pos
  }

  copy(pos: number, size: number, target: Buffer, offset: number): void {
    const start = pos - this.base
    this.buf.copy(target, offset, start, start + size)
  }

  /** Forgets everything before `pos`. */
  release(pos: number): void {
    const drop = Math.min(pos - this.base, this.length)
    if (drop <= 0) return
    this.base += drop
    this.length -= drop
    // What stays is a sample or two held back for their durations: cheap to move down.
    if (this.length > 0) this.buf.copy(this.buf, 0, drop, drop + this.length)
  }

  private grow(need: number): void {
    const next = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2))
    this.buf.copy(next, 0, 0, this.length)
    this.buf = next
  }
}
