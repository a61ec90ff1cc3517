import { NMS_VERSION, rtmpParserPrototype } from './nms.js'

/**
 * Caps on node-media-server's RTMP chunk parser (src/protocol/rtmp.js), reached through the adapter (nms.ts).
 *
 * Why: its parser allocates, per chunk stream, a zeroed buffer of the message length a chunk header declares (up to
 * 16 MB), as soon as the header is read, with no limit on the number of chunk streams (up to 65,599 ids) and no
 * check of the chunk size a peer sets. Before any key is checked, one 14 KB connection could make it allocate
 * 1.6 GB; two waves of 250 handshakes followed by 60 KB of `0x41` took an ingest from 78 MB to 1.26 GB of RSS, for
 * good. So a connection gets hard caps, checked on each chunk header before node-media-server allocates anything:
 * small ones until its publish is accepted (commands are a few hundred bytes), sane ones after. A peer that goes past
 * a cap gets `RtmpLimitError` thrown out of the parser; the connection guard then closes that connection.
 */

export interface RtmpLimits {
  /** Largest message length a chunk header may declare. */
  maxMessageBytes: number
  /** Most distinct chunk stream ids a connection may use. */
  maxChunkStreams: number
  /** Largest chunk size the peer may set (Set Chunk Size); 0 is never allowed. */
  maxChunkSize: number
}

/**
 * Until a publish is accepted: an encoder's connect, releaseStream, FCPublish, createStream and publish are 100-500
 * bytes each on 2-4 chunk streams (ffmpeg: 2, 3, 8; OBS/librtmp: 2, 3, 4); encoders set chunk sizes of 4096 (ffmpeg,
 * OBS) to 60,000 and more before they publish, which costs us nothing by itself (the parser copies into the message
 * buffer, whose size the message length bounds). Worst case: 8 × (4 KB + node-media-server's 1 KB slack) per
 * connection.
 */
export const PRE_PUBLISH_LIMITS: RtmpLimits = Object.freeze({ maxMessageBytes: 4_096, maxChunkStreams: 8, maxChunkSize: 0xffffff })

/**
 * An accepted publisher (it holds a valid key): a 1080p keyframe is 100-500 KB, a 4K one rarely above 2 MB. Audio,
 * video, data and commands take 3-6 chunk streams. Worst case: 16 × 4 MB, for a key holder only.
 */
export const PUBLISHER_LIMITS: RtmpLimits = Object.freeze({ maxMessageBytes: 4 * 1024 * 1024, maxChunkStreams: 16, maxChunkSize: 0xffffff })

/**
 * The allocator setting ingest must be started with (set by `pnpm start`, scripts/start.sh, the image, the e2e and
 * bench launchers; glibc reads it before any JS runs, so ingest cannot set it for itself and warns at start when it
 * is missing). Why: glibc raises its mmap threshold (up to 32 MB) each time a block it had mmapped is freed, and a
 * media server frees big blocks all the time (keyframes, segments). From then on those blocks come from the heap,
 * which returns to the system only what sits at its top: measured here, three waves of 500 bare handshakes took the
 * heap from 8 MB to 480 MB, kept for good, caps or not. A fixed threshold keeps big blocks mmapped (returned on
 * free) and the heap small: the same waves then move RSS by under 20 MB, and it comes back.
 */
export const ALLOCATOR_ENV = { MALLOC_MMAP_THRESHOLD_: '131072' } as const

export class RtmpLimitError extends Error {
  override name = 'RtmpLimitError'
}

/** The parts of node-media-server 4.4.3's `Rtmp` (one per RTMP session) that the caps read. */
interface NmsRtmp {
  parserPacket: { header: { length: number; type: number }; payload: Buffer }
  inPackets: Map<number, unknown>
  packetParse(): void
  controlHandler(): void
}

const RTMP_TYPE_SET_CHUNK_SIZE = 1

/** Connections whose publish was accepted; every other one is held to `PRE_PUBLISH_LIMITS`. */
const publishers = new WeakSet<object>()
let installed = false

/**
 * Puts the caps into node-media-server's parser (once per process; every RTMP session shares its prototype).
 * Throws when the installed node-media-server is not the version this adapter was written against, or its parser
 * does not have the shape read here: an upgrade must be re-checked, never silently left uncapped.
 */
export function installRtmpLimits(): void {
  if (installed) return
  const version = NMS_VERSION
  const proto = rtmpParserPrototype() as NmsRtmp
  if (typeof proto.packetParse !== 'function' || typeof proto.controlHandler !== 'function' || typeof (proto as { packetAlloc?: unknown }).packetAlloc !== 'function') {
    throw new Error(`node-media-server ${version}'s Rtmp parser lacks packetParse/controlHandler/packetAlloc: rtmp-limits cannot cap it`)
  }
  const packetParse = proto.packetParse
  const controlHandler = proto.controlHandler
  // packetParse reads a chunk's basic and message headers (adding a new chunk stream to inPackets); packetAlloc,
  // which sizes the buffer by the declared length, runs only after it returns.
  proto.packetParse = function (this: NmsRtmp) {
    packetParse.call(this)
    const limits = limitsOf(this)
    if (this.inPackets.size > limits.maxChunkStreams) {
      throw new RtmpLimitError(`more than ${limits.maxChunkStreams} chunk streams`)
    }
    if (this.parserPacket.header.length > limits.maxMessageBytes) {
      throw new RtmpLimitError(`a message of ${this.parserPacket.header.length} bytes declared, over ${limits.maxMessageBytes}`)
    }
  }
  proto.controlHandler = function (this: NmsRtmp) {
    const { header, payload } = this.parserPacket
    if (header.type === RTMP_TYPE_SET_CHUNK_SIZE) {
      // The first bit is reserved (0); node-media-server reads all 32.
      const size = header.length >= 4 ? payload.readUInt32BE(0) : 0
      const { maxChunkSize } = limitsOf(this)
      if (size < 1 || size > maxChunkSize) throw new RtmpLimitError(`chunk size ${size} outside 1..${maxChunkSize}`)
    }
    controlHandler.call(this)
  }
  installed = true
}

function limitsOf(rtmp: object): RtmpLimits {
  return publishers.has(rtmp) ? PUBLISHER_LIMITS : PRE_PUBLISH_LIMITS
}

/** The publish of this node-media-server session was accepted: its connection gets `PUBLISHER_LIMITS`. */
export function allowPublisher(session: { rtmp?: unknown }): void {
  if (session.rtmp && typeof session.rtmp === 'object') publishers.add(session.rtmp)
}

/** The caps in force for a session's connection (for tests and logs). */
export function limitsFor(session: { rtmp?: unknown }): RtmpLimits {
  return session.rtmp && typeof session.rtmp === 'object' ? limitsOf(session.rtmp) : PRE_PUBLISH_LIMITS
}
