import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import type { Logger } from './logger.js'

/** Only these names are ever served: a playback id and a file name our packager writes. Nothing else reaches the disk. */
const ID = '[A-Za-z0-9_-]{1,64}'
const ROUTE = new RegExp(
  `^/(hls|dash)/(${ID})/(index\\.m3u8|seg_\\d{1,9}\\.ts|index\\.mpd|init-\\d{1,3}\\.m4s|chunk-\\d{1,3}-\\d{1,9}\\.m4s)$`
)

const TYPES: Record<string, { type: string; cache: string }> = {
  '.m3u8': { type: 'application/vnd.apple.mpegurl', cache: 'no-cache' },
  '.mpd': { type: 'application/dash+xml', cache: 'no-cache' },
  '.ts': { type: 'video/mp2t', cache: 'public, max-age=60' },
  '.m4s': { type: 'video/iso.segment', cache: 'public, max-age=60' }
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'cross-origin'
}
// Players on other origins (hls.js, dash.js) read playlists and segments with fetch/XHR.
const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD, OPTIONS',
  'access-control-allow-headers': 'range, content-type',
  'access-control-expose-headers': 'content-length, content-range'
}

export interface MediaHttpOptions {
  mediaRoot: string
  host: string
  port: number
  requestTimeout: number
  headersTimeout: number
  health: () => { ok: boolean; detail: Record<string, unknown> }
  /** `/readyz`: 503 naming what is down (see readiness.ts); absent, `/readyz` follows `/healthz`. */
  ready?: () => { ok: boolean; detail: Record<string, unknown> }
  metrics: () => string
  log: Logger
}

function send(res: http.ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8') {
  res.writeHead(status, { ...SECURITY_HEADERS, ...CORS_HEADERS, 'content-type': type, 'cache-control': 'no-store' })
  res.end(body)
}

/** Serves the packaged media from MEDIA_ROOT, plus /healthz and /metrics. GET and HEAD only. */
export function createMediaHttp(opts: MediaHttpOptions): http.Server {
  // Timeouts are enforced only when Node checks connections: check every second, not every 30 s (its default).
  const serverOptions = {
    requestTimeout: opts.requestTimeout,
    headersTimeout: opts.headersTimeout,
    connectionsCheckingInterval: 1_000,
    keepAliveTimeout: 5_000
  }
  const server = http.createServer(serverOptions, async (req, res) => {
    const method = req.method ?? 'GET'
    if (method === 'OPTIONS') {
      res.writeHead(204, { ...SECURITY_HEADERS, ...CORS_HEADERS, 'access-control-max-age': '86400' })
      res.end()
      return
    }
    if (method !== 'GET' && method !== 'HEAD') return send(res, 405, 'method not allowed\n')
    const url = (req.url ?? '/').split('?')[0] as string
    if (url === '/healthz') {
      const h = opts.health()
      return send(res, h.ok ? 200 : 503, JSON.stringify({ success: h.ok, data: h.detail, message: h.ok ? 'alive' : 'not ready' }), 'application/json')
    }
    if (url === '/readyz') {
      const r = (opts.ready ?? opts.health)()
      const down = Array.isArray(r.detail.down) ? ` (down: ${r.detail.down.join(', ')})` : ''
      return send(res, r.ok ? 200 : 503, JSON.stringify({ success: r.ok, data: r.detail, message: r.ok ? 'ready' : `not ready${down}` }), 'application/json')
    }
    if (url === '/metrics') return send(res, 200, opts.metrics(), 'text/plain; version=0.0.4')
    const m = ROUTE.exec(url)
    if (!m) return send(res, 404, 'not found\n')
    const [, kind, id, file] = m as unknown as [string, string, string, string]
    const full = path.join(opts.mediaRoot, kind, id, file)
    let size: number
    try {
      const st = await stat(full)
      if (!st.isFile()) return send(res, 404, 'not found\n')
      size = st.size
    } catch {
      return send(res, 404, 'not found\n')
    }
    const t = TYPES[path.extname(file)] as { type: string; cache: string }
    res.writeHead(200, { ...SECURITY_HEADERS, ...CORS_HEADERS, 'content-type': t.type, 'cache-control': t.cache, 'content-length': size })
    if (method === 'HEAD') return res.end()
    const stream = createReadStream(full)
    stream.on('error', () => res.destroy())
    stream.pipe(res)
  })
  server.maxHeadersCount = 50
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n')
    else socket.destroy()
  })
  return server
}
