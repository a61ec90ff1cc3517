import http from 'node:http'
import https from 'node:https'
import type { Logger } from './logger.js'
import type { MediaRoute } from './media/media-paths.js'
import type { Holder, PlaybackDirectory } from './playback-directory.js'

/**
 * Marks a request one node proxies to another. A node never proxies a request that carries it: a stale claim can
 * cost one hop and a 404, never a loop between nodes.
 */
export const HOP_HEADER = 'x-livestream-proxied-by'

/** The LL-HLS delivery directives: the only query a proxied request carries. */
const PASSED_QUERY = ['_HLS_msn', '_HLS_part', '_HLS_skip']
/** Response headers that belong to one connection, not to the answer (and are forbidden in HTTP/2). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'te', 'trailer'])

export type ProxyAnswer = 'proxied' | 'no-holder'

export interface MediaProxyOptions {
  directory: PlaybackDirectory
  /** Longest wait for the holder's answer, and longest silence inside it (blocking reloads hold up to 3 target durations). */
  timeoutMs: number
  log: Logger
}

/**
 * The edge side of "any node answers any playback id" (SRS's origin/edge): a media request for a playback id this
 * node does not hold goes to the node that does, found in the playback directory, and its answer comes back as it
 * is. Proxying, not redirecting, keeps the player's URL (and the relative URLs inside playlists) the same when the
 * stream moves between nodes.
 *
 * Bounded: only routes `media-paths.ts` parsed (the path is rebuilt from them, never taken from the client), only
 * playback ids some node claimed in Redis, only to the origin that node registered, with only the LL-HLS directives
 * as query, one hop at most, and a timeout on the wait and on every silence.
 */
export class MediaProxy {
  private readonly agents = {
    'http:': new http.Agent({ keepAlive: true, maxSockets: 1_024, maxFreeSockets: 64 }),
    'https:': new https.Agent({ keepAlive: true, maxSockets: 1_024, maxFreeSockets: 64 })
  }
  readonly stats = { proxied: 0, failed: 0 }

  constructor(private readonly opts: MediaProxyOptions) {}

  /**
   * Answers `req` from the node holding `route.id`, or resolves `no-holder` without touching `res` when no other node
   * holds it (the caller answers 404). `path` is the request's path, already matched to `route`. `onHolder` learns
   * the holder of a request about to go upstream (the edge counts its viewer there, see `ViewerTracking.proxied`).
   *
   * No header of the client's goes upstream but `accept`: a client's own `x-livestream-proxied-by` never reaches the
   * holder through here (and a request carrying it is not proxied at all).
   */
  async forward(
    route: MediaRoute,
    path: string,
    search: URLSearchParams,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    fail: (status: number, message: string) => void,
    onHolder?: (holder: Holder) => void
  ): Promise<ProxyAnswer> {
    if (req.headers[HOP_HEADER] !== undefined) return 'no-holder'
    const holder = await this.opts.directory.holderOf(route.id)
    if (!holder || holder.nodeId === this.opts.directory.nodeId) return 'no-holder'
    const target = upstreamUrl(holder, path, search)
    if (!target) return 'no-holder'
    if (res.destroyed) return 'proxied'
    onHolder?.(holder)
    this.stats.proxied++
    await this.send(target, route, holder, req, res, fail, true)
    return 'proxied'
  }

  /** One request upstream; a kept-alive socket the holder closed meanwhile gets one retry on a fresh one. */
  private send(
    target: URL,
    route: MediaRoute,
    holder: Holder,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    fail: (status: number, message: string) => void,
    mayRetry: boolean
  ): Promise<void> {
    return new Promise<void>((resolve) => {
      const client = target.protocol === 'https:' ? https : http
      const upstream = client.request(target, {
        method: req.method === 'HEAD' ? 'HEAD' : 'GET',
        agent: this.agents[target.protocol as 'http:' | 'https:'],
        headers: { [HOP_HEADER]: this.opts.directory.nodeId, accept: req.headers.accept ?? '*/*' },
        timeout: this.opts.timeoutMs
      })
      let answered = false
      let settled = false
      const done = () => {
        settled = true
        resolve()
      }
      const onClientGone = () => {
        // The player went away before the answer was through: so does the request upstream (a held blocking reload
        // frees its socket). Once the answer is complete the socket is back in the pool and must not be touched.
        if (!settled) upstream.destroy()
        done()
      }
      upstream.on('timeout', () => upstream.destroy(new Error(`no answer within ${this.opts.timeoutMs} ms`)))
      upstream.on('error', (err: NodeJS.ErrnoException) => {
        if (settled) return
        res.off('close', onClientGone)
        if (!answered && mayRetry && upstream.reusedSocket && err.code === 'ECONNRESET' && !res.destroyed) {
          void this.send(target, route, holder, req, res, fail, false).then(done)
          return
        }
        this.stats.failed++
        this.opts.log.warn({ playbackId: route.id, holder: holder.nodeId, err: { message: err.message } }, 'playback proxy: the holder did not answer')
        if (!res.headersSent) fail(502, 'the node holding this stream did not answer')
        else res.destroy()
        done()
      })
      upstream.on('response', (answer) => {
        answered = true
        const headers: Record<string, string | string[]> = {}
        for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value
        res.writeHead(answer.statusCode ?? 502, headers)
        answer.pipe(res)
        answer.on('end', done)
        answer.on('error', () => {
          res.destroy()
          done()
        })
      })
      res.once('close', onClientGone)
      upstream.end()
    })
  }

  close(): void {
    this.agents['http:'].destroy()
    this.agents['https:'].destroy()
  }
}

/** The holder's URL for a media path, or null when its registered origin is not a plain http(s) origin. */
export function upstreamUrl(holder: Holder, path: string, search: URLSearchParams): URL | null {
  let origin: URL
  try {
    origin = new URL(holder.url)
  } catch {
    return null
  }
  if (origin.protocol !== 'http:' && origin.protocol !== 'https:') return null
  const url = new URL(path, origin.origin)
  for (const name of PASSED_QUERY) {
    const v = search.get(name)
    if (v !== null) url.searchParams.set(name, v)
  }
  return url
}
