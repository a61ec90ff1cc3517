/**
 * The burned-in wall clock: how a publisher draws the moment each frame entered its filter graph, and the layout the
 * player page needs to read it back (the page's decoder takes this layout as it is, so the two cannot drift apart).
 *
 * A strip of `COLUMNS` × `ROWS` square blocks in the top-left corner of the picture, read row by row:
 * - cells 0–3: sync `1 0 1 0`;
 * - cells 4–43: the capture time in ms since the epoch, modulo 2^40 (34 years), most significant bit first;
 * - cell 44: even parity over the 40 data bits;
 * - cells 45–47: sync `0 1 1`.
 * White is 1, black is 0. Blocks are `blockSize(width)` px (≥ 8, even so 4:2:0 chroma stays aligned), big enough that
 * H.264 at ultrafast keeps every block's centre clearly black or white.
 */

export interface BitClockLayout {
  columns: number
  rows: number
  /** Picture width the publisher drew for; a player scales the cells by `videoWidth / width`. */
  width: number
  /** Block edge in px of that picture. */
  block: number
  /** Cell values fixed by the layout (index → bit); the rest are data and parity. */
  sync: Record<number, 0 | 1>
  firstDataCell: number
  dataBits: number
  parityCell: number
}

const COLUMNS = 24
const ROWS = 2
const DATA_BITS = 40
const FIRST_DATA_CELL = 4
const PARITY_CELL = FIRST_DATA_CELL + DATA_BITS
const SYNC: Record<number, 0 | 1> = { 0: 1, 1: 0, 2: 1, 3: 0, 45: 0, 46: 1, 47: 1 }
const MODULUS = 2 ** DATA_BITS

/** The block edge for a picture `width` px wide: the strip spans the whole width, rounded down to even px. */
export function blockSize(width: number): number {
  const block = 2 * Math.floor(width / (2 * COLUMNS))
  if (block < 8) throw new Error(`a bit clock needs a picture at least ${COLUMNS * 8} px wide (got ${width})`)
  return block
}

export function bitClockLayout(width: number): BitClockLayout {
  return {
    columns: COLUMNS,
    rows: ROWS,
    width,
    block: blockSize(width),
    sync: SYNC,
    firstDataCell: FIRST_DATA_CELL,
    dataBits: DATA_BITS,
    parityCell: PARITY_CELL
  }
}

/**
 * An ffmpeg video filter chain that burns the clock into every frame. The frame's timestamps become the wall clock in
 * ms (`time(0)`, read once per frame as it passes `setpts`), `drawbox` filters draw the bits from `t`, and the
 * timestamps are put back to `N / fps` so the encoder and the muxer see an ordinary stream.
 */
export function bitClockFilter(width: number, fps: number): string {
  const block = blockSize(width)
  // floor(t*1000+0.5): t is ms/1000 as a double; rounding undoes the division's error.
  const value = `mod(floor(t*1000+0.5),${MODULUS})`
  const bit = (weight: number) => `mod(floor(${value}/${2 ** weight}),2)`
  const cell = (index: number, enable?: string) => {
    const x = (index % COLUMNS) * block
    const y = Math.floor(index / COLUMNS) * block
    const box = `drawbox=x=${x}:y=${y}:w=${block}:h=${block}:color=white:t=fill`
    return enable === undefined ? box : `${box}:enable='${enable}'`
  }
  const weights = Array.from({ length: DATA_BITS }, (_, i) => DATA_BITS - 1 - i)
  const filters = [
    'settb=expr=1/1000',
    'setpts=floor(time(0)*1000)',
    `drawbox=x=0:y=0:w=${COLUMNS * block}:h=${ROWS * block}:color=black:t=fill`,
    ...Object.entries(SYNC).filter(([, v]) => v === 1).map(([i]) => cell(Number(i))),
    ...weights.map((w, i) => cell(FIRST_DATA_CELL + i, bit(w))),
    cell(PARITY_CELL, `mod(${weights.map(bit).join('+')},2)`),
    `setpts=N/(${fps}*TB)`
  ]
  return filters.join(',')
}

