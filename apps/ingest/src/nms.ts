/**
 * The one door into node-media-server's internals. Every deep import, every field we read on its objects and every
 * method we replace lives here, checked against the exact version we read the source of: an upgrade fails at start
 * (and in test/nms-contract.test.ts) in this one place instead of misbehaving somewhere else.
 */
import { createRequire } from 'node:module'
import type { Server as HttpServer } from 'node:http'
import type { Server as NetServer, Socket } from 'node:net'

const require = createRequire(import.meta.url)

/** The version whose source this adapter was written against. */
export const NMS_VERSION = '4.4.3'

const installed = (require('node-media-server/package.json') as { version: string }).version
if (installed !== NMS_VERSION) {
  throw new Error(
    `node-media-server ${installed} is installed, but ingest's adapter (src/nms.ts) was written against ${NMS_VERSION}: ` +
      're-read its src/ (context.js, broadcast_server.js, rtmp_session.js, http_server.js) and update the adapter and its contract test'
  )
}

/**
 * A parsed media message (src/core/avpacket.js). `data` is the FLV tag body (5-byte video prefix, 2-byte audio
 * prefix) in the parser's reused buffer: copy what you keep before returning.
 */
export interface AVPacket {
  /** 8 audio, 9 video, 18 script data. */
  codec_type: number
  /** 0 AAC header, 1 audio frame, 2 AVC header, 3 keyframe, 4 inter frame, 5 metadata. */
  flags: number
  /** Milliseconds, from the 32-bit RTMP timestamp. */
  dts: number
  pts: number
  size: number
  data: Buffer
}

/** node-media-server's server object (src/index.js), as much as we use. */
export interface NmsInstance {
  on(event: string, listener: (session: NmsSession) => void): void
  run(): Promise<void>
  stop(): Promise<void>
  httpServer: NmsHttpServer
  rtmpServer: { tcpServer?: NetServer }
  historyServer: { isRunning: boolean; stop(): void }
}

/** Its HTTP side as src/server/http_server.js builds it (`http.port` set). */
export interface NmsHttpServer {
  httpServer?: HttpServer
  wsServer?: { on(event: 'connection', listener: (ws: { terminate(): void }) => void): void; removeAllListeners(event: 'connection'): void }
  run(): void
}

/** Its sessions (src/session/rtmp_session.js, flv_session.js), as much as we use. */
export interface NmsSession {
  id: string
  ip: string
  protocol: string
  streamApp: string
  streamName: string
  streamPath: string
  /** RTMP sessions only. */
  socket?: Socket
  /** RTMP sessions only: its chunk parser (see rtmp-limits.ts). */
  rtmp?: unknown
  /** HTTP-FLV and WebSocket-FLV sessions: the request, whose socket carries the connection. */
  req?: { socket?: Socket }
  close(): void
}

/** src/server/broadcast_server.js: one per stream path, reused by a publisher resuming within its 30 s grace. */
interface BroadcastServer {
  publisher: NmsSession | null
  subscribers: Map<string, unknown>
  /** An instance field (arrow function): replacing it on the instance replaces it for that broadcast only. */
  broadcastMessage: (packet: AVPacket) => void
}

const Context = require('node-media-server/src/core/context.js') as { broadcasts: Map<string, BroadcastServer> }
const NodeMediaServer = require('node-media-server') as new (config: unknown) => NmsInstance
const { hashPassword } = require('node-media-server/src/api/handlers/password_hash.js') as { hashPassword: (plain: string) => string }
const nmsLogger = require('node-media-server/src/core/logger.js') as { level: string; log: (message: string, level?: string) => void }

export function createNodeMediaServer(config: unknown): NmsInstance {
  return new NodeMediaServer(config)
}

/** Its scrypt password hash, the form its admin login compares against. */
export { hashPassword }

/** Routes its log singleton (which prints stream paths, i.e. keys, with console.log) to `sink`. */
export function routeNmsLogs(sink: (message: string, level: string) => void): void {
  nmsLogger.log = (message: string, level = 'info') => sink(String(message), level)
}

/**
 * The prototype every RTMP session's chunk parser shares (src/protocol/rtmp.js): rtmp-limits.ts caps what its
 * headers may make it allocate.
 */
export function rtmpParserPrototype(): object {
  return (require('node-media-server/src/protocol/rtmp.js') as { prototype: object }).prototype
}

/** The session node-media-server holds as the publisher of `streamPath`, if any. */
export function publisherOf(streamPath: string): NmsSession | null {
  return Context.broadcasts.get(streamPath)?.publisher ?? null
}

/**
 * Takes the media of `streamPath`'s broadcast: every parsed packet goes to `onPacket` instead of node-media-server's
 * own fan-out. That fan-out re-serializes each packet twice (FLV and RTMP messages) and keeps a GOP cache for players,
 * yet no outside player may play here (the key is the path), so it is pure cost. Its resume logic (timestamp offsets
 * within its 30 s grace) goes with it: the packager keeps the timeline across reconnects itself.
 * Call it once the publish is accepted, before the socket resumes.
 */
export function tapBroadcast(streamPath: string, onPacket: (packet: AVPacket) => void): boolean {
  const broadcast = Context.broadcasts.get(streamPath)
  if (!broadcast) return false
  broadcast.broadcastMessage = onPacket
  return true
}
