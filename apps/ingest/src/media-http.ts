import http from 'node:http'
import http2 from 'node:http2'
import type { Socket } from 'node:net'
import type { Logger } from './logger.js'
import { HOP_HEADER, type MediaProxy } from './media-proxy.js'
import { parseMediaPath } from './media/media-paths.js'
import type { Holder } from './playback-directory.js'
import { checkOperatorBearer } from './operator-auth.js'
import { MediaRoutes } from './media/media-routes.js'
import type { MediaWindows } from './media/window.js'
import type { ViewerTracking } from './viewers.js'

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'cross-origin'
}
// Players on other origins (hls.js, dash.js) read playlists and segments with fetch/XHR. What a preflight needs goes
// on the preflight only: every header is work repeated for each of thousands of held answers.
const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'content-length, content-range, date'
}
const PREFLIGHT_HEADERS = {
  'access-control-allow-methods': 'GET, HEAD, OPTIONS',
  'access-control-allow-headers': 'range, content-type',
  'access-control-max-age': '86400'
}
const BASE_HEADERS = { ...SECURITY_HEADERS, ...CORS_HEADERS }
/** Prometheus' text format (prom-client's). */
const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
/** Longer request targets are refused with 414 before anything looks at them; ours are well under 200 characters. */
const MAX_URL = 2_048

export interface MediaHttpOptions {
  windows: MediaWindows
  host: string
  port: number
  requestTimeout: number
  headersTimeout: number
  /** Liveness (`/healthz`). */
  health: () => { ok: boolean; detail: Record<string, unknown> }
  /** Readiness (`/readyz`): 503 while not ok, so a load balancer sends no viewers. */
  ready: () => { ok: boolean; detail: Record<string, unknown> }
  /** Prometheus text exposition for `/metrics`. */
  metrics: () => string | Promise<string>
  /**
   * `POST /admin/drain` (operators, bearer `token`): starts the node's drain; `started` false when it was already
   * draining (the call is idempotent). A null token turns the call off (403): SIGTERM still drains.
   */
  drain?: { token: string | null; start(): { started: boolean; status: object } }
  /** Media requests for playback ids this node does not hold go to the node that does (absent: 404). */
  proxy?: MediaProxy
  log: Logger
  /** HTTP/2 over TLS (HTTP/1.1 still accepted on the same port); plain HTTP/1.1 when absent. */
  tls?: { cert: Buffer; key: Buffer }
  /** Caps every held request below the spec's three target durations (tests). */
  maxHoldMs?: number
  /** Counts the players of live streams from their GETs of media routes (HEAD and OPTIONS are no viewing). */
  viewers?: ViewerTracking
}

export type MediaHttpServer = http.Server | http2.Http2SecureServer

const envelope = (success: boolean, data: unknown, message: string): string => JSON.stringify({ success, data, message })

/** `/`: what this server is and what it serves, instead of a 404 for a first look. */
const LANDING = envelope(
  true,
  {
    service: 'circle-livestream ingest',
    links: {
      hls: '/hls/{playback_id}/index.m3u8',
      dash: '/dash/{playback_id}/index.mpd',
      healthz: '/healthz',
      readyz: '/readyz',
      metrics: '/metrics',
      time: '/time'
    }
  },
  "circle-livestream ingest: LL-HLS and DASH by playback id; the api's /watch/{playback_id} plays them in a page"
)

/** The one error answer: the JSON envelope, never the path asked for. */
function fail(res: http.ServerResponse, status: number, message: string): void {
  if (res.headersSent) return void res.destroy()
  const body = envelope(false, null, message)
  res.writeHead(status, { ...BASE_HEADERS, 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

function json(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { ...BASE_HEADERS, 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

/** Operator answers: the envelope, never cached, and no CORS (no page on another origin has business here). */
function adminAnswer(res: http.ServerResponse, status: number, success: boolean, data: unknown, message: string, extra: Record<string, string> = {}): void {
  const body = envelope(success, data, message)
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body), ...extra })
  res.end(body)
}

/** Errors Node's parser answers before a request exists (no route, no envelope of ours otherwise). */
const CLIENT_ERRORS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'request header fields too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'request timeout']
}

function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy()
  const [status, message] = CLIENT_ERRORS[err.code ?? ''] ?? [400, 'bad request']
  const body = envelope(false, null, message)
  const headers = { ...BASE_HEADERS, 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body), connection: 'close' }
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`)
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n${lines.join('\r\n')}\r\n\r\n${body}`)
}

/**
 * The media HTTP server of an ingest node: LL-HLS playlists, the DASH MPD and CMAF bytes from the live windows in
 * memory, plus `/` (directions), `/healthz`, `/readyz`, `/metrics` and `/time` (the clock DASH players sync to). GET, HEAD
 * and OPTIONS.
 */
export function createMediaHttp(opts: MediaHttpOptions): MediaHttpServer {
  const routes = new MediaRoutes({ windows: opts.windows, ...(opts.maxHoldMs === undefined ? {} : { maxHoldMs: opts.maxHoldMs }) })

  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const method = req.method ?? 'GET'
    const target = req.url ?? '/'
    if (target.length > MAX_URL) return fail(res, 414, 'uri too long')
    const q = target.indexOf('?')
    const path = q === -1 ? target : target.slice(0, q)
    if (path === '/admin/drain') return drain(req, res, method)
    if (method === 'OPTIONS') {
      res.writeHead(204, { ...BASE_HEADERS, ...PREFLIGHT_HEADERS })
      return void res.end()
    }
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD, OPTIONS')
      return fail(res, 405, 'method not allowed')
    }
    if (path === '/') return json(res, 200, LANDING)
    if (path === '/healthz' || path === '/readyz') {
      const h = path === '/healthz' ? opts.health() : opts.ready()
      const down = Array.isArray(h.detail.down) ? ` (down: ${h.detail.down.join(', ')})` : ''
      const message = h.ok ? (path === '/healthz' ? 'alive' : 'ready') : h.detail.draining === true ? 'draining: send new publishes and viewers elsewhere' : `not ready${down}`
      return json(res, h.ok ? 200 : 503, envelope(h.ok, h.detail, message))
    }
    if (path === '/metrics') {
      Promise.resolve()
        .then(opts.metrics)
        .then(
          (text) => {
            res.writeHead(200, { ...BASE_HEADERS, 'content-type': METRICS_CONTENT_TYPE, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) })
            res.end(method === 'HEAD' ? undefined : text)
          },
          (err: unknown) => {
            opts.log.error({ err }, 'metrics collection failed')
            fail(res, 500, 'internal error')
          }
        )
      return
    }
    if (path === '/time') {
      // DASH UTCTiming (http-iso): the node's clock, which stamped every segment's programDateTime.
      const now = new Date().toISOString()
      res.writeHead(200, { ...BASE_HEADERS, 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'content-length': now.length })
      return void res.end(method === 'HEAD' ? undefined : now)
    }
    const route = parseMediaPath(path)
    if (!route) return fail(res, 404, 'not found')
    const search = new URLSearchParams(q === -1 ? '' : target.slice(q + 1))
    // A viewer is counted by the node it asks (its address and `vs` are the player's), the proxied ones too (below);
    // the node a request was proxied to does not count it again. A client can send the marker itself: that only keeps
    // its own requests uncounted (and unproxied), never counts anything twice (README, "What counts as a viewer").
    const counted = method === 'GET' && req.headers[HOP_HEADER] === undefined
    if (counted) opts.viewers?.request(route.id, req, search)
    const viewers = counted ? opts.viewers : undefined
    const onHolder = viewers
      ? (holder: Holder) => {
          if (holder.stream) viewers.proxied(route.id, { nodeId: holder.nodeId, ...holder.stream }, req, search)
        }
      : undefined
    const answer = (status: number, message: string) => fail(res, status, message)
    routes
      .serve(route, search, res, BASE_HEADERS, method === 'HEAD', answer)
      .then(async (served) => {
        if (served !== 'not-here') return
        // Not held here (or no longer: it moved while the request was held): the node holding it answers.
        const proxied = opts.proxy ? await opts.proxy.forward(route, path, search, req, res, answer, onHolder) : 'no-holder'
        if (proxied === 'no-holder') answer(404, 'not found')
      })
      .catch((err: unknown) => {
        opts.log.error({ err, route: route.type, playbackId: route.id }, 'media request failed')
        fail(res, 500, 'internal error')
      })
  }

  const drain = (req: http.IncomingMessage, res: http.ServerResponse, method: string): void => {
    req.resume() // a body, if any, is not read
    if (method !== 'POST') return adminAnswer(res, 405, false, null, 'method not allowed', { allow: 'POST' })
    const d = opts.drain
    if (!d?.token) {
      return adminAnswer(res, 403, false, null, 'the drain call is disabled on this node: set OPERATOR_TOKEN to enable it (SIGTERM always drains)')
    }
    const auth = checkOperatorBearer(req.headers.authorization, d.token)
    if (auth !== 'ok') {
      opts.log.warn({ remote: req.socket.remoteAddress, credentials: auth }, 'drain call refused: bad operator credentials')
      return adminAnswer(res, 401, false, null, auth === 'missing' ? 'operator credentials required (Authorization: Bearer <OPERATOR_TOKEN>)' : 'bad operator credentials', {
        'www-authenticate': 'Bearer realm="ingest-admin"'
      })
    }
    const { started, status } = d.start()
    opts.log.info({ remote: req.socket.remoteAddress, started }, 'drain requested by an operator')
    adminAnswer(res, started ? 202 : 200, true, status, started ? 'draining' : 'already draining')
  }

  let server: MediaHttpServer
  if (opts.tls) {
    server = http2.createSecureServer({ cert: opts.tls.cert, key: opts.tls.key, allowHTTP1: true, maxSessionMemory: 10 })
    // The compatibility API mirrors http's request/response for both protocols.
    server.on('request', handle as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void)
    // Node checks HTTP/1.1 header and request timeouts only on http.Server: an idle socket limit stands in here.
    server.setTimeout(opts.requestTimeout)
  } else {
    // Timeouts are enforced only when Node checks connections: check every second, not every 30 s (its default).
    server = http.createServer(
      { requestTimeout: opts.requestTimeout, headersTimeout: opts.headersTimeout, connectionsCheckingInterval: 1_000, keepAliveTimeout: 5_000 },
      handle
    )
    server.maxHeadersCount = 50
  }
  server.on('clientError', answerClientError)
  const sockets = new Set<Socket>()
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })
  closers.set(server, () => {
    for (const s of sockets) s.destroy()
  })
  return server
}

const closers = new WeakMap<MediaHttpServer, () => void>()

/** Closes the server and every connection it holds (held requests included). */
export async function closeMediaHttp(server: MediaHttpServer): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  closers.get(server)?.()
  await closed
}
