import { readdir, rm } from 'node:fs/promises'
import type { Socket } from 'node:net'
import path from 'node:path'
import { loggableError } from '@livestream/db'
import { adminAuthConfig, takeOverAdminServer } from './admin-api.js'
import type { IngestConfig } from './config.js'
import type { LiveStreams } from './live-streams.js'
import type { Logger } from './logger.js'
import { createNodeMediaServer, publisherOf, type NmsInstance, type NmsSession } from './nms.js'
import { keyFingerprint, type PublishAuth } from './publish-auth.js'
import { allowPublisher, installRtmpLimits, RtmpLimitError } from './rtmp-limits.js'

export type { NmsSession }

const addressOf = (ip: string) => ip.replace(/:\d+$/, '')

/** node-media-server's store: per node, so nodes sharing a MEDIA_ROOT never share (or lock each other out of) it. */
export const storePath = (mediaRoot: string, nodeId: string) => path.join(mediaRoot, '.nms-store', nodeId)

/**
 * Earlier versions let node-media-server's history writer save every publish (its stream name: the key) in
 * `.nms-store/stream_history*.json`, the store then being shared by all nodes. Those files go at start.
 */
async function dropStoredHistory(mediaRoot: string, nodeId: string): Promise<void> {
  for (const dir of [path.join(mediaRoot, '.nms-store'), storePath(mediaRoot, nodeId)]) {
    for (const file of await readdir(dir).catch(() => [] as string[])) {
      if (file.startsWith('stream_history')) await rm(path.join(dir, file), { force: true })
    }
  }
}

export interface MediaServerDeps {
  config: IngestConfig
  auth: PublishAuth
  live: LiveStreams
  log: Logger
}

/**
 * node-media-server with our publish and play rules. Its `prePublish` is emitted synchronously after it already
 * answered NetStream.Publish.Start, and it ignores listener results: so the publisher's socket is paused until our
 * async verdict, then resumed or destroyed before any packaging starts or event is sent. Only RTMP publishes: other
 * sessions (HTTP-FLV on the admin port, relays) have no socket to hold and are cut at once.
 */
export function createMediaServer({ config, auth, live, log }: MediaServerDeps) {
  installRtmpLimits()
  const nms = createNodeMediaServer({
    bind: config.host,
    rtmp: { port: config.rtmpPort, chunk_size: 60_000, gop_cache: false, ping: 30, ping_timeout: 60 },
    ...(config.admin ? { http: { port: config.admin.port }, auth: adminAuthConfig(config.admin) } : {}),
    webadmin: { enable: false },
    store: { path: storePath(config.mediaRoot, config.nodeId) }
  })
  const adminListening = config.admin
    ? takeOverAdminServer(nms.httpServer, {
        admin: config.admin,
        requestTimeout: config.http.requestTimeout,
        headersTimeout: config.http.headersTimeout,
        log: log.child({ component: 'admin-api' })
      })
    : null
  const guard = guardConnections(nms, config.rtmpPrePublish, log)
  let accepting = true
  const pending = new Set<Promise<void>>()

  /** Ends a session we refuse: its own close, then its connection, whatever the protocol. */
  const cut = (session: NmsSession) => {
    session.close()
    ;(session.socket ?? session.req?.socket)?.destroy()
  }

  const decide = async (session: NmsSession) => {
    const socket = session.socket as Socket
    const slog = log.child({ sessionId: session.id, remote: addressOf(session.ip) })
    const refuse = (reason: string, extra: Record<string, unknown> = {}) => {
      slog.warn({ reason, ...extra }, 'publish refused')
      socket.destroy()
    }
    if (!accepting) return refuse('node shutting down')
    if (session.streamApp !== 'live') return refuse('unknown application')
    const key = session.streamName
    const verdict = await auth.authorize(key, addressOf(session.ip))
    if (socket.destroyed) return
    if (!verdict.ok) return refuse(verdict.reason, { key: keyFingerprint(key) })
    // node-media-server may have refused it on its own meanwhile (a second publisher on a live path).
    if (publisherOf(session.streamPath) !== session) return refuse('path already has a publisher')
    const slogS = slog.child({ streamId: verdict.target.id })
    socket.once('close', () => live.publisherGone(verdict.target.id, session))
    try {
      await live.accept(verdict.target, key, session.streamPath, session)
    } catch (err) {
      slogS.error({ err: { message: (err as Error).message } }, 'could not start packaging; refusing publish')
      socket.destroy()
      return
    }
    allowPublisher(session)
    socket.resume()
    slogS.info('publish accepted')
  }

  nms.on('prePublish', (session) => {
    if (session.protocol !== 'rtmp' || !session.socket) {
      log.warn({ sessionId: session.id, remote: addressOf(session.ip), protocol: session.protocol }, 'publish refused: only RTMP publishes')
      cut(session)
      return
    }
    session.socket.pause()
    guard.publishAsked(session.socket)
    const p = decide(session).catch((err: unknown) => {
      log.error({ err: loggableError(err), sessionId: session.id }, 'publish check failed')
      session.socket?.destroy()
    })
    pending.add(p)
    void p.finally(() => pending.delete(p))
  })

  // The key is a secret: outside clients never play by it, over any protocol. Internal subscribers (our packager)
  // have no address and never reach this event.
  nms.on('prePlay', (session) => {
    if (session.ip === '') return
    log.warn({ sessionId: session.id, remote: addressOf(session.ip), protocol: session.protocol }, 'play by stream key refused; viewers use HLS/DASH')
    cut(session)
  })

  return {
    /** The RTMP listener (its connections' bytes are counted for metrics). */
    rtmpServer: nms.rtmpServer.tcpServer,
    async run() {
      await dropStoredHistory(config.mediaRoot, config.nodeId)
      await nms.run()
      // Its history writer saves every finished publish (stream path and name: the key) into the store on disk,
      // refused publishes included. Nothing here reads that history; the key must never reach the disk.
      nms.historyServer.stop()
      await adminListening?.()
    },
    /** Refuses new publishes; in-flight verdicts settle. */
    async stopAccepting() {
      accepting = false
      await Promise.allSettled([...pending])
    },
    async stop() {
      await nms.stop()
    }
  }
}

/**
 * Guards every RTMP connection before it is a publish we accepted:
 * - node-media-server's parser runs inside each socket's 'data' listener and throws on some malformed commands (a
 *   connect without tcUrl: `new URL(undefined)`; a publish or play without a name): uncaught, one such packet would
 *   end the process. The listener is wrapped so a throw costs only the connection that caused it.
 * - Until a connection asks to publish it has proved nothing, yet node-media-server would keep it open for ever and
 *   buffer whatever it sends (a message header alone makes it allocate up to 16 MB, on each of thousands of chunk
 *   streams). So it must ask within a deadline, having sent at most a few KB (a real encoder's handshake and
 *   commands take about 5 KB); the ask itself pauses the socket until our verdict (see `prePublish`). What the
 *   parser may allocate per chunk header is capped too, tighter until the publish is accepted (rtmp-limits.ts).
 */
function guardConnections(nms: NmsInstance, limits: IngestConfig['rtmpPrePublish'], log: Logger) {
  /** Connections that have not asked to publish yet, with their deadline. */
  const unproven = new WeakMap<Socket, NodeJS.Timeout>()
  nms.rtmpServer.tcpServer?.on('connection', (socket: Socket) => {
    const remote = socket.remoteAddress
    const deadline = setTimeout(() => {
      log.warn({ remote, deadlineMs: limits.deadlineMs }, 'RTMP connection closed: no publish within the deadline')
      socket.destroy()
    }, limits.deadlineMs).unref()
    unproven.set(socket, deadline)
    socket.once('close', () => clearTimeout(deadline))
    let received = 0
    for (const listener of socket.listeners('data') as Array<(chunk: Buffer) => void>) {
      socket.off('data', listener)
      socket.on('data', (chunk: Buffer) => {
        if (unproven.has(socket) && (received += chunk.length) > limits.maxBytes) {
          log.warn({ remote, maxBytes: limits.maxBytes }, 'RTMP connection closed: too much data before a publish')
          socket.destroy()
          return
        }
        try {
          listener(chunk)
        } catch (err) {
          if (err instanceof RtmpLimitError) log.warn({ remote, limit: err.message }, 'RTMP connection closed: over a parser limit')
          else log.warn({ remote, err: { type: (err as Error).name } }, 'malformed RTMP message; connection closed')
          socket.destroy()
        }
      })
    }
  })
  return {
    /** The connection asked to publish: from here on its publish verdict decides. */
    publishAsked(socket: Socket) {
      clearTimeout(unproven.get(socket))
      unproven.delete(socket)
    }
  }
}
