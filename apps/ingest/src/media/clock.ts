/**
 * FLV timestamps are 32-bit milliseconds (node-media-server reads them as a signed int): after 2^31 ms they turn
 * negative, after 2^32 they wrap to 0. A clock per track unwraps them into one increasing millisecond count.
 */
const WRAP = 2 ** 32
const HALF = 2 ** 31

export class FlvClock {
  private wrap = 0
  private last = Number.NaN

  unwrap(raw: number): number {
    let t = (raw < 0 ? raw + WRAP : raw) + this.wrap
    if (!Number.isNaN(this.last)) {
      if (t < this.last - HALF) {
        this.wrap += WRAP
        t += WRAP
      } else if (t > this.last + HALF && this.wrap > 0) {
        // A late tag from before the wrap.
        this.wrap -= WRAP
        t -= WRAP
      }
    }
    this.last = t
    return t
  }

  reset(): void {
    this.wrap = 0
    this.last = Number.NaN
  }
}
