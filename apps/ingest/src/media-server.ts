import { createRequire } from 'node:module'
import type { Socket } from 'node:net'
import type { IngestConfig } from './config.js'
import type { LiveStreams } from './live-streams.js'
import type { Logger } from './logger.js'
import { keyFingerprint, type PublishAuth } from './publish-auth.js'

const require = createRequire(import.meta.url)
const NodeMediaServer = require('node-media-server') as new (config: unknown) => {
  on(event: string, listener: (session: NmsSession) => void): void
  run(): Promise<void>
  stop(): Promise<void>
}
const Context = require('node-media-server/src/core/context.js') as {
  broadcasts: Map<string, { publisher: unknown }>
}

/** The parts of node-media-server's session we use (see its src/session/rtmp_session.js). */
export interface NmsSession {
  id: string
  ip: string
  protocol: string
  streamApp: string
  streamName: string
  streamPath: string
  socket?: Socket
  close(): void
}

const addressOf = (ip: string) => ip.replace(/:\d+$/, '')

export interface MediaServerDeps {
  config: IngestConfig
  auth: PublishAuth
  live: LiveStreams
  log: Logger
}

/**
 * node-media-server with our publish and play rules. Its `prePublish` is emitted synchronously after it already
 * answered NetStream.Publish.Start, and it ignores listener results: so the publisher's socket is paused until our
 * async verdict, then resumed or destroyed before any packaging starts or event is sent.
 */
export function createMediaServer({ config, auth, live, log }: MediaServerDeps) {
  const nms = new NodeMediaServer({
    bind: config.host,
    rtmp: { port: config.rtmpPort, chunk_size: 60_000, gop_cache: true, ping: 30, ping_timeout: 60 },
    ...(config.admin
      ? { http: { port: config.admin.port }, auth: { api: true, api_user: config.admin.user, api_pass: config.admin.pass, secret: config.admin.secret, play: false, publish: false } }
      : {}),
    webadmin: { enable: false },
    store: { path: `${config.mediaRoot}/.nms-store` }
  })
  let accepting = true
  const pending = new Set<Promise<void>>()

  const decide = async (session: NmsSession) => {
    const socket = session.socket
    const slog = log.child({ sessionId: session.id, remote: addressOf(session.ip) })
    const refuse = (reason: string, extra: Record<string, unknown> = {}) => {
      slog.warn({ reason, ...extra }, 'publish refused')
      socket?.destroy()
    }
    if (!accepting) return refuse('node shutting down')
    if (session.streamApp !== 'live') return refuse('unknown application')
    const key = session.streamName
    const verdict = await auth.authorize(key, addressOf(session.ip))
    if (!socket || socket.destroyed) return
    if (!verdict.ok) return refuse(verdict.reason, { key: keyFingerprint(key) })
    // node-media-server may have refused it on its own meanwhile (a second publisher on a live path).
    if (Context.broadcasts.get(session.streamPath)?.publisher !== session) return refuse('path already has a publisher')
    const slogS = slog.child({ streamId: verdict.target.id })
    socket.once('close', () => live.publisherGone(verdict.target.id, session))
    try {
      await live.accept(verdict.target, key, session.streamPath, session)
    } catch (err) {
      slogS.error({ err: { message: (err as Error).message } }, 'could not start packaging; refusing publish')
      socket.destroy()
      return
    }
    socket.resume()
    slogS.info('publish accepted')
  }

  nms.on('prePublish', (session) => {
    session.socket?.pause()
    const p = decide(session).catch((err: Error) => {
      log.error({ err: { message: err.message }, sessionId: session.id }, 'publish check failed')
      session.socket?.destroy()
    })
    pending.add(p)
    void p.finally(() => pending.delete(p))
  })

  // The key is a secret: outside clients never play by it. Internal subscribers (our packager) have no address.
  nms.on('prePlay', (session) => {
    if (session.ip === '') return
    log.warn({ sessionId: session.id, remote: addressOf(session.ip) }, 'play by stream key refused; viewers use HLS/DASH')
    session.close()
  })

  return {
    async run() {
      await nms.run()
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
