import net from 'node:net'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'

/**
 * A hand-written RTMP client, small on purpose: the plain handshake, AMF0 commands chunked at the default 128 bytes,
 * and a reader for what the server sends back. It says exactly what a test tells it to, however malformed (a stream
 * name with a NUL byte, `../`, 10 KB; a connect without tcUrl), which ffmpeg and OBS never would.
 */

export type Amf0 = number | boolean | string | null | undefined | Amf0[] | { [key: string]: Amf0 }

export interface RtmpMessage {
  type: number
  streamId: number
  payload: Buffer
  /** For AMF0 commands and data (types 20 and 18): the decoded values, command name first. */
  values?: Amf0[]
}

const TYPE_SET_CHUNK_SIZE = 1
const TYPE_DATA = 18
const TYPE_INVOKE = 20
const CSID_INVOKE = 3

// ---- AMF0 ----

export function amf0(value: Amf0): Buffer {
  if (value === null) return Buffer.from([0x05])
  if (value === undefined) return Buffer.from([0x06])
  if (typeof value === 'number') {
    const b = Buffer.alloc(9)
    b[0] = 0x00
    b.writeDoubleBE(value, 1)
    return b
  }
  if (typeof value === 'boolean') return Buffer.from([0x01, value ? 1 : 0])
  if (typeof value === 'string') {
    const s = Buffer.from(value, 'utf8')
    if (s.length > 0xffff) {
      const h = Buffer.alloc(5)
      h[0] = 0x0c
      h.writeUInt32BE(s.length, 1)
      return Buffer.concat([h, s])
    }
    const h = Buffer.alloc(3)
    h[0] = 0x02
    h.writeUInt16BE(s.length, 1)
    return Buffer.concat([h, s])
  }
  if (Array.isArray(value)) {
    const h = Buffer.alloc(5)
    h[0] = 0x0a
    h.writeUInt32BE(value.length, 1)
    return Buffer.concat([h, ...value.map(amf0)])
  }
  const parts: Buffer[] = [Buffer.from([0x03])]
  for (const [k, v] of Object.entries(value)) {
    const key = Buffer.from(k, 'utf8')
    const len = Buffer.alloc(2)
    len.writeUInt16BE(key.length)
    parts.push(len, key, amf0(v))
  }
  parts.push(Buffer.from([0x00, 0x00, 0x09]))
  return Buffer.concat(parts)
}

function decodeOne(buf: Buffer, at: number): [Amf0, number] {
  const type = buf[at]
  switch (type) {
    case 0x00:
      return [buf.readDoubleBE(at + 1), at + 9]
    case 0x01:
      return [buf[at + 1] !== 0, at + 2]
    case 0x02: {
      const n = buf.readUInt16BE(at + 1)
      return [buf.toString('utf8', at + 3, at + 3 + n), at + 3 + n]
    }
    case 0x0c: {
      const n = buf.readUInt32BE(at + 1)
      return [buf.toString('utf8', at + 5, at + 5 + n), at + 5 + n]
    }
    case 0x05:
      return [null, at + 1]
    case 0x06:
      return [undefined, at + 1]
    case 0x03:
    case 0x08: {
      let p = at + (type === 0x08 ? 5 : 1)
      const obj: { [key: string]: Amf0 } = {}
      while (p + 3 <= buf.length && !(buf.readUInt16BE(p) === 0 && buf[p + 2] === 0x09)) {
        const n = buf.readUInt16BE(p)
        const key = buf.toString('utf8', p + 2, p + 2 + n)
        const [v, next] = decodeOne(buf, p + 2 + n)
        obj[key] = v
        p = next
      }
      return [obj, p + 3]
    }
    case 0x0a: {
      const n = buf.readUInt32BE(at + 1)
      let p = at + 5
      const arr: Amf0[] = []
      for (let i = 0; i < n; i++) {
        const [v, next] = decodeOne(buf, p)
        arr.push(v)
        p = next
      }
      return [arr, p]
    }
    default:
      throw new Error(`AMF0 type ${type} not supported by this client`)
  }
}

export function decodeAmf0(buf: Buffer): Amf0[] {
  const out: Amf0[] = []
  let p = 0
  while (p < buf.length) {
    const [v, next] = decodeOne(buf, p)
    out.push(v)
    p = next
  }
  return out
}

// ---- the client ----

interface InChunkStream {
  timestamp: number
  length: number
  type: number
  streamId: number
  payload: Buffer[]
  received: number
}

export class RawRtmpClient {
  readonly messages: RtmpMessage[] = []
  /** Resolves when the server (or we) closed the connection. */
  readonly closed: Promise<void>
  private buffer = Buffer.alloc(0)
  private inChunkSize = 128
  private readonly chunkStreams = new Map<number, InChunkStream>()
  private waiters: Array<() => void> = []
  private transactions = 1

  private constructor(private readonly socket: net.Socket) {
    // Not `once(socket, 'close')`: that rejects on the 'error' (a reset) that comes before the close.
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()))
    socket.on('error', () => {})
    socket.on('data', (d: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, d])
      this.parse()
    })
    void this.closed.then(() => this.wake())
  }

  /** TCP connect plus the plain (unsigned) RTMP handshake: C0+C1, wait for S0+S1+S2, send C2. */
  static async open(port: number, host = '127.0.0.1'): Promise<RawRtmpClient> {
    const socket = net.connect(port, host)
    socket.on('error', () => {})
    await once(socket, 'connect')
    const c1 = Buffer.concat([Buffer.alloc(8), randomBytes(1528)])
    socket.write(Buffer.concat([Buffer.from([0x03]), c1]))
    let got = Buffer.alloc(0)
    while (got.length < 1 + 1536 * 2) {
      const [chunk] = (await once(socket, 'data')) as [Buffer]
      got = Buffer.concat([got, chunk])
    }
    socket.write(got.subarray(1, 1 + 1536))
    const client = new RawRtmpClient(socket)
    if (got.length > 1 + 1536 * 2) {
      client.buffer = got.subarray(1 + 1536 * 2)
      client.parse()
    }
    return client
  }

  get isClosed(): boolean {
    return this.socket.destroyed || this.socket.readableEnded
  }

  /** Writes one message, split into 128-byte chunks (the size the server reads until told otherwise). */
  send(type: number, streamId: number, payload: Buffer, csid = CSID_INVOKE): void {
    const header = Buffer.alloc(12)
    header[0] = csid & 0x3f
    header.writeUIntBE(0, 1, 3)
    header.writeUIntBE(payload.length, 4, 3)
    header[7] = type
    header.writeUInt32LE(streamId, 8)
    const parts: Buffer[] = [header]
    for (let at = 0; at < payload.length; at += 128) {
      if (at > 0) parts.push(Buffer.from([0xc0 | (csid & 0x3f)]))
      parts.push(payload.subarray(at, at + 128))
    }
    if (!this.socket.destroyed) this.socket.write(Buffer.concat(parts))
  }

  command(name: string, streamId: number, ...args: Amf0[]): number {
    const transId = this.transactions++
    this.send(TYPE_INVOKE, streamId, Buffer.concat([amf0(name), amf0(transId), ...args.map(amf0)]))
    return transId
  }

  /** `connect` to an application; resolves with the server's `_result` (or `_error`) values. */
  async connect(app: string, tcUrl: string | undefined, timeoutMs = 5_000): Promise<Amf0[]> {
    const cmdObj: { [key: string]: Amf0 } = { app, type: 'nonprivate', flashVer: 'FMLE/3.0 (compatible; raw-rtmp)' }
    if (tcUrl !== undefined) cmdObj.tcUrl = tcUrl
    const transId = this.command('connect', 0, cmdObj)
    return (await this.waitForCommand((v) => (v[0] === '_result' || v[0] === '_error') && v[1] === transId, timeoutMs)).values ?? []
  }

  /** `createStream`; resolves with the message stream id the server gave. */
  async createStream(timeoutMs = 5_000): Promise<number> {
    const transId = this.command('createStream', 0, null)
    const answer = await this.waitForCommand((v) => v[0] === '_result' && v[1] === transId, timeoutMs)
    return Number(answer.values?.[3] ?? 1)
  }

  publish(streamId: number, name: string): void {
    this.command('publish', streamId, null, name, 'live')
  }

  play(streamId: number, name: string): void {
    this.command('play', streamId, null, name, -2000)
  }

  /** Waits for a command or data message whose decoded values satisfy `match`; null if none came in time. */
  async waitForCommand(match: (values: Amf0[]) => boolean, timeoutMs: number): Promise<RtmpMessage> {
    const found = await this.waitFor((m) => m.values !== undefined && match(m.values), timeoutMs)
    if (!found) throw new Error(`no matching RTMP command within ${timeoutMs} ms (closed: ${this.isClosed})`)
    return found
  }

  /** The first message satisfying `match`, or null once the connection closed or `timeoutMs` passed. */
  async waitFor(match: (m: RtmpMessage) => boolean, timeoutMs: number): Promise<RtmpMessage | null> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const m = this.messages.find(match)
      if (m) return m
      const left = deadline - Date.now()
      if (left <= 0 || this.socket.destroyed) return null
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** Waits until the server closes the connection; true if it did within `timeoutMs`. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), timeoutMs)))
    const result = await Promise.race([this.closed.then(() => true as const), timeout])
    clearTimeout(timer)
    return result
  }

  /** Writes raw bytes after the handshake (for malformed chunks). */
  writeRaw(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes)
  }

  destroy(): void {
    this.socket.destroy()
  }

  private wake(): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }

  /** Reads chunks (all four header formats, extended timestamps) into whole messages. */
  private parse(): void {
    for (;;) {
      const b = this.buffer
      if (b.length < 1) return
      const fmt = b[0]! >> 6
      let csid = b[0]! & 0x3f
      let p = 1
      if (csid === 0) {
        if (b.length < 2) return
        csid = 64 + b[1]!
        p = 2
      } else if (csid === 1) {
        if (b.length < 3) return
        csid = 64 + b[1]! + b[2]! * 256
        p = 3
      }
      const headerLength = [11, 7, 3, 0][fmt]!
      if (b.length < p + headerLength) return
      const prev = this.chunkStreams.get(csid)
      const cs: InChunkStream = prev ?? { timestamp: 0, length: 0, type: 0, streamId: 0, payload: [], received: 0 }
      let timestamp = cs.timestamp
      if (fmt <= 2) timestamp = b.readUIntBE(p, 3)
      if (fmt <= 1) {
        cs.length = b.readUIntBE(p + 3, 3)
        cs.type = b[p + 6]!
      }
      if (fmt === 0) cs.streamId = b.readUInt32LE(p + 7)
      p += headerLength
      if (timestamp === 0xffffff) {
        if (b.length < p + 4) return
        p += 4
      }
      const want = Math.min(this.inChunkSize, cs.length - cs.received)
      if (b.length < p + want) return
      cs.timestamp = timestamp
      cs.payload.push(b.subarray(p, p + want))
      cs.received += want
      this.buffer = b.subarray(p + want)
      this.chunkStreams.set(csid, cs)
      if (cs.received >= cs.length) {
        const payload = Buffer.concat(cs.payload)
        cs.payload = []
        cs.received = 0
        this.onMessage({ type: cs.type, streamId: cs.streamId, payload })
      }
    }
  }

  private onMessage(m: RtmpMessage): void {
    if (m.type === TYPE_SET_CHUNK_SIZE && m.payload.length >= 4) this.inChunkSize = m.payload.readUInt32BE(0) & 0x7fffffff
    if (m.type === TYPE_INVOKE || m.type === TYPE_DATA) {
      try {
        m.values = decodeAmf0(m.payload)
      } catch {
        m.values = []
      }
    }
    this.messages.push(m)
    this.wake()
  }
}

/** The `code` of an onStatus command's info object, if `values` is one. */
export function statusCode(values: Amf0[] | undefined): string | undefined {
  if (!values || values[0] !== 'onStatus') return undefined
  const info = values[3]
  return info && typeof info === 'object' && !Array.isArray(info) && typeof info.code === 'string' ? info.code : undefined
}
