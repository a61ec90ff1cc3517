import crypto from 'node:crypto'
import type { IncomingMessage } from 'node:http'

/**
 * Concurrent HLS/DASH viewers, counted from media requests (the README's "What counts as a viewer").
 *
 * A player is a session: the `vs` query token the watch page adds to every media request when it is well-formed, else
 * a hash of the address and the user agent. A viewer is a session seen within the last `windowMs` on a stream that is
 * live here. A request costs two map lookups and a field write (a new session: one entry); expiry is a sweep every
 * second, and nothing here touches a database: counts leave the node as one `stream.viewers` event per stream, at most
 * every `VIEWER_REPORT_MS`, only when they change (and a refresh of an unchanged count, so the api's sum keeps it).
 *
 * Faked sessions: one address may hold at most `perAddress` sessions of a stream (IPv6 addresses count by their /64,
 * what one subscriber is given); a session beyond that is not counted until one of the address's expires. Memory is
 * bounded: at most `maxPerStream` sessions per stream and `maxSessions` per node, beyond which new sessions are not
 * counted either.
 */

/** SHA-1 in base64: `crypto.hash` (one call, Node >= 20.12) where there is one, else a Hash object. */
const sha1: (text: string) => string =
  typeof crypto.hash === 'function' ? (text) => crypto.hash('sha1', text, 'base64') : (text) => crypto.createHash('sha1').update(text).digest('base64')

/** The watch page's session token: url-safe, 16 to 64 characters (its own random id). */
export const VIEWER_TOKEN = /^[A-Za-z0-9_-]{16,64}$/
/** The query parameter carrying the token. */
export const VIEWER_TOKEN_PARAM = 'vs'

interface Session {
  lastSeen: number
  /** The address group it was counted against (see `addressGroup`). */
  group: string
}

interface StreamSessions {
  /** Sessions of players presenting a token, by token. */
  readonly tokens: Map<string, Session>
  /** Sessions of players without one, by hash of address and user agent. */
  readonly anonymous: Map<string, Session>
  /** Live sessions per address group, for the per-address cap. */
  readonly groups: Map<string, number>
}

export interface ViewerCounterOptions {
  /** A session counts while it was seen within this many ms. */
  windowMs: number
  /** Sessions one address group may hold on one stream. */
  perAddress: number
  /** Sessions one stream may hold on this node. */
  maxPerStream: number
  /** Sessions this node holds over all its streams. */
  maxSessions: number
  /**
   * True while a playback id is counted here: live here (its window open and not ended), or held by another node this
   * one proxies its players to (viewer-reports.ts's `EdgeStreams`); only those are counted.
   */
  live: (playbackId: string) => boolean
  now?: () => number
}

export interface ViewerCounterStats {
  /** New sessions not counted because their address held `perAddress` already. */
  refusedByAddress: number
  /** New sessions not counted because the stream or the node held its maximum. */
  refusedByBound: number
}

/**
 * The address a cap applies to: IPv4 as is (an IPv4-mapped IPv6 address as its IPv4), IPv6 by its /64 prefix, since a
 * subscriber gets a whole /64 and could otherwise take a new address per request.
 */
export function addressGroup(address: string): string {
  if (!address.includes(':')) return address
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7)
  const bare = address.split('%')[0] as string
  const [head = '', tail] = bare.split('::')
  const left = head ? head.split(':') : []
  const right = tail ? tail.split(':') : []
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
  return `${groups
    .slice(0, 4)
    .map((g) => (Number.parseInt(g, 16) || 0).toString(16))
    .join(':')}::/64`
}

/** Per stream (by playback id), the players seen within the window; see the module comment. */
export class ViewerCounter {
  private readonly streams = new Map<string, StreamSessions>()
  private sessions = 0
  private readonly now: () => number
  readonly stats: ViewerCounterStats = { refusedByAddress: 0, refusedByBound: 0 }

  constructor(private readonly opts: ViewerCounterOptions) {
    this.now = opts.now ?? Date.now
  }

  /**
   * One media request of a player: `token` is the `vs` parameter as sent (null when absent), `address` the client's
   * address, `userAgent` its header. A malformed token counts the player by address and user agent instead.
   */
  seen(playbackId: string, token: string | null, address: string, userAgent: string | undefined): void {
    if (token !== null && VIEWER_TOKEN.test(token)) this.seenToken(playbackId, token, address)
    else this.seenAnonymous(playbackId, address, userAgent)
  }

  /** A request with a well-formed token (checked by the caller against `VIEWER_TOKEN`). */
  seenToken(playbackId: string, token: string, address: string): void {
    const stream = this.streams.get(playbackId)
    const s = stream?.tokens.get(token)
    if (s) s.lastSeen = this.now()
    else this.add(playbackId, stream, 'tokens', token, address)
  }

  /** A request without a (well-formed) token: the player is its address and user agent. */
  seenAnonymous(playbackId: string, address: string, userAgent: string | undefined): void {
    // The hash keeps every key short whatever the header's length.
    const key = sha1(`${address}\n${userAgent ?? ''}`)
    const stream = this.streams.get(playbackId)
    const s = stream?.anonymous.get(key)
    if (s) s.lastSeen = this.now()
    else this.add(playbackId, stream, 'anonymous', key, address)
  }

  private open(playbackId: string): StreamSessions {
    const s: StreamSessions = { tokens: new Map(), anonymous: new Map(), groups: new Map() }
    this.streams.set(playbackId, s)
    return s
  }

  private add(playbackId: string, known: StreamSessions | undefined, kind: 'tokens' | 'anonymous', key: string, address: string): void {
    // New sessions only for a stream live here: the sweep drops an ended stream's within a second.
    if (!this.opts.live(playbackId)) return
    if (this.sessions >= this.opts.maxSessions || (known && known.tokens.size + known.anonymous.size >= this.opts.maxPerStream)) {
      this.stats.refusedByBound++
      return
    }
    const stream = known ?? this.open(playbackId)
    const group = addressGroup(address)
    const held = stream.groups.get(group) ?? 0
    if (held >= this.opts.perAddress) {
      this.stats.refusedByAddress++
      return
    }
    stream.groups.set(group, held + 1)
    stream[kind].set(key, { lastSeen: this.now(), group })
    this.sessions++
  }

  /** Viewers of a playback id now. */
  count(playbackId: string): number {
    const s = this.streams.get(playbackId)
    return s ? s.tokens.size + s.anonymous.size : 0
  }

  /** Viewers of every stream of this node now (the `livestream_ingest_viewers` gauge). */
  total(): number {
    return this.sessions
  }

  /** Forgets sessions not seen within the window, and every session of a stream no longer live here. */
  sweep(): void {
    const oldest = this.now() - this.opts.windowMs
    for (const [playbackId, stream] of this.streams) this.expire(playbackId, stream, this.opts.live(playbackId) ? oldest : Number.POSITIVE_INFINITY)
  }

  /** Forgets every session of a playback id now (a proxied stream whose holder went away). */
  forget(playbackId: string): void {
    const stream = this.streams.get(playbackId)
    if (stream) this.expire(playbackId, stream, Number.POSITIVE_INFINITY)
  }

  private expire(playbackId: string, stream: StreamSessions, oldest: number): void {
    for (const map of [stream.tokens, stream.anonymous]) {
      for (const [key, s] of map) {
        if (s.lastSeen >= oldest) continue
        map.delete(key)
        this.sessions--
        const left = (stream.groups.get(s.group) ?? 1) - 1
        if (left > 0) stream.groups.set(s.group, left)
        else stream.groups.delete(s.group)
      }
    }
    if (stream.tokens.size + stream.anonymous.size === 0) this.streams.delete(playbackId)
  }
}

/**
 * The client address of a request: the socket's peer, or, behind `trustProxyHops` proxies of the operator's, the
 * `X-Forwarded-For` entry that many from the right (the one the outermost trusted proxy saw). With 0 hops the header
 * is ignored: anyone can write it.
 */
export function clientAddress(req: IncomingMessage, trustProxyHops: number): string {
  const peer = req.socket?.remoteAddress ?? ''
  if (trustProxyHops === 0) return peer
  const header = req.headers['x-forwarded-for']
  const value = Array.isArray(header) ? header.join(',') : header
  if (!value) return peer
  const entries = value.split(',')
  const entry = entries[Math.max(0, entries.length - trustProxyHops)]?.trim()
  return entry || peer
}

export interface ViewerTrackingOptions extends Omit<ViewerCounterOptions, 'live' | 'now'> {
  /** Proxies in front of the node whose `X-Forwarded-For` is trusted (`VIEWER_TRUST_PROXY_HOPS`). */
  trustProxyHops: number
}

/** The stream behind a playback id another node holds, as its holder record says (playback-directory.ts). */
export interface ProxiedStream {
  /** The holder's node id. */
  nodeId: string
  streamId: number
  sessionId: string
}

/** What media HTTP calls: counts a GET of a media route (see `createMediaHttp`). */
export interface ViewerTracking {
  /** A GET of a playback id that may be live here (counted only if it is, or is followed as proxied). */
  request(playbackId: string, req: IncomingMessage, search: URLSearchParams): void
  /**
   * A GET this node proxies to `stream`'s holder: the player is counted here, where its request arrived (the holder
   * sees this node's address, and does not count what carries the proxy marker).
   */
  proxied(playbackId: string, stream: ProxiedStream, req: IncomingMessage, search: URLSearchParams): void
  total(): number
}

/**
 * A counter fed from media HTTP requests. `follow` (the edge's streams) is told of every proxied request before it is
 * counted, so that the counter takes sessions for that playback id.
 */
export function viewerTracking(counter: ViewerCounter, trustProxyHops: number, follow?: (playbackId: string, stream: ProxiedStream) => void): ViewerTracking {
  const request = (playbackId: string, req: IncomingMessage, search: URLSearchParams) => {
    const token = search.get(VIEWER_TOKEN_PARAM)
    // Node builds `req.headers` on first use: a player with a token never needs it (unless behind trusted proxies).
    if (token !== null && VIEWER_TOKEN.test(token)) counter.seenToken(playbackId, token, clientAddress(req, trustProxyHops))
    else counter.seenAnonymous(playbackId, clientAddress(req, trustProxyHops), req.headers['user-agent'])
  }
  return {
    request,
    proxied(playbackId, stream, req, search) {
      if (!follow) return
      follow(playbackId, stream)
      request(playbackId, req, search)
    },
    total: () => counter.total()
  }
}
