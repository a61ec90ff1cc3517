import type { Redis } from 'ioredis'
import type { Logger } from './logger.js'
import { everyNoOverlap, type NoOverlapTimer } from './no-overlap-timer.js'
import { createRedisClient } from './redis-client.js'
import type { TrackKind } from './media/window.js'

/** The node that serves a playback id now, as the other nodes reach it. */
export interface Holder {
  nodeId: string
  /** Its media HTTP origin (`INGEST_INTERNAL_URL`): the playback proxy's only upstream. */
  url: string
  /**
   * The stream it holds under this playback id and the `sessionId` of its events, so that a node proxying players to
   * it can count them and report them as that stream's (README, "What counts as a viewer"). Absent in records written
   * before they were carried: a proxying node then cannot count those players.
   */
  stream?: HeldStream
}

/** What a holder record says of the stream itself. */
export interface HeldStream {
  streamId: number
  sessionId: string
}

/**
 * Where a stream's playlists stand, so that the node a publisher reconnects to continues them instead of starting
 * again at 0: players holding the old node's playlist then see the next media sequence numbers after a
 * discontinuity, as after a reconnect to the same node.
 */
export interface Timeline {
  /** The msn the next segment takes. */
  nextMsn: number
  /** `availabilityStartTime` of the MPD (epoch ms): the same on every node, so DASH Periods follow each other. */
  ast: number
  /**
   * Where the last media ended on the wall clock (`EXT-X-PROGRAM-DATE-TIME` of the last segment plus its length):
   * the next node dates its first segment from here, so players that place the new segments by date find them right
   * after what they have, not after a gap the length of the reconnect.
   */
  endPdt?: number
  /** Per track: discontinuity tags up to the last segment, and the next init version (init URLs are cached as immutable). */
  tracks: Partial<Record<TrackKind, { discontinuities: number; nextInit: number }>>
}

export interface PlaybackDirectoryOptions {
  redisUrl: string
  prefix: string
  nodeId: string
  /** This node's media HTTP as the other nodes reach it. */
  internalUrl: string
  /** Holder keys are refreshed this often and live three times as long: a dead node's claims lapse on their own. */
  refreshMs: number
  /** Timelines outlive the stream's publisher by this much at least (the reconnect window, with margin). */
  timelineTtlMs: number
  log: Logger
}

/** Lookups answered from memory for this long: thousands of players of one stream cost one Redis read per period. */
const LOOKUP_CACHE_MS = 500
/** A timeline read that takes longer than this starts the stream afresh rather than holding the publisher. */
const TIMELINE_READ_MS = 1_000
// Deletes the holder key only while it still names this node: a node that gave a stream away must not unclaim it
// from the node that took it.
const RELEASE_IF_MINE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
// Refreshes a claim only while it is this node's (or lapsed): a stream whose publisher went to another node must not
// be claimed back by the node it left, which still holds it within the reconnect window.
const REFRESH_IF_MINE =
  "local v = redis.call('GET', KEYS[1]) if v == false or v == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end return 0"

/**
 * Which node serves which playback id, and where each stream's timeline stands, in Redis (beside the queue, under
 * `QUEUE_PREFIX`). A node claims a playback id once it has media for it and refreshes the claim while it holds the
 * stream; any node answering a player looks the holder up here and proxies to it (media-proxy.ts). A claim expires on
 * its own when its node dies, so the directory never points at a dead node for long.
 */
export class PlaybackDirectory {
  private readonly redis: Redis
  /** Playback ids claimed here, each with the record written for it (the refresh and the release compare it). */
  private readonly claimed = new Map<string, string>()
  private readonly cache = new Map<string, { holder: Holder | null; until: number }>()
  private timer: NoOverlapTimer | null = null
  private readonly pending = new Set<Promise<unknown>>()

  constructor(private readonly opts: PlaybackDirectoryOptions) {
    this.redis = createRedisClient({ url: opts.redisUrl, role: 'playback-directory', log: opts.log, problemLevel: 'debug' })
  }

  get nodeId(): string {
    return this.opts.nodeId
  }

  private holderKey(playbackId: string): string {
    return `${this.opts.prefix}:playback:${playbackId}:holder`
  }

  private timelineKey(playbackId: string): string {
    return `${this.opts.prefix}:playback:${playbackId}:timeline`
  }

  private get claimTtlMs(): number {
    return Math.max(3 * this.opts.refreshMs, 3_000)
  }

  start(): void {
    this.timer = everyNoOverlap(() => this.refresh(), this.opts.refreshMs, () => undefined)
  }

  /**
   * From now on this node serves `playbackId`: players reaching other nodes are proxied here. `stream` goes into the
   * record, so that the nodes proxying to this one can count their players as that stream's viewers.
   */
  claim(playbackId: string, stream?: HeldStream): void {
    const holder: Holder = { nodeId: this.opts.nodeId, url: this.opts.internalUrl, ...(stream ? { stream: { streamId: stream.streamId, sessionId: stream.sessionId } } : {}) }
    const record = JSON.stringify(holder)
    this.claimed.set(playbackId, record)
    this.cache.set(playbackId, { holder, until: Date.now() + LOOKUP_CACHE_MS })
    this.track(this.redis.set(this.holderKey(playbackId), record, 'PX', this.claimTtlMs))
  }

  /** This node no longer serves `playbackId` (the stream ended, or moved to another node). */
  release(playbackId: string): void {
    const record = this.claimed.get(playbackId)
    if (record === undefined) return
    this.claimed.delete(playbackId)
    this.cache.delete(playbackId)
    this.track(this.redis.eval(RELEASE_IF_MINE, 1, this.holderKey(playbackId), record))
  }

  /** The node serving `playbackId`, or null. `fresh` skips the in-memory answer (decisions that end a stream). */
  async holderOf(playbackId: string, fresh = false): Promise<Holder | null> {
    const now = Date.now()
    const hit = this.cache.get(playbackId)
    if (!fresh && hit && hit.until > now) return hit.holder
    let holder: Holder | null = null
    try {
      holder = parseHolder(await this.redis.get(this.holderKey(playbackId)))
    } catch (err) {
      this.opts.log.debug({ err: { message: (err as Error).message } }, 'holder lookup failed')
      return null
    }
    if (this.cache.size > 10_000) this.cache.clear()
    this.cache.set(playbackId, { holder, until: now + LOOKUP_CACHE_MS })
    return holder
  }

  /** The holders of several playback ids at once, fresh from Redis (the drain's and the reconnect window's check). */
  async holdersOf(playbackIds: string[]): Promise<Map<string, Holder | null>> {
    const out = new Map<string, Holder | null>()
    if (playbackIds.length === 0) return out
    const values = await this.redis.mget(playbackIds.map((id) => this.holderKey(id)))
    playbackIds.forEach((id, i) => out.set(id, parseHolder(values[i] ?? null)))
    return out
  }

  saveTimeline(playbackId: string, timeline: Timeline): void {
    this.track(this.redis.set(this.timelineKey(playbackId), JSON.stringify(timeline), 'PX', this.opts.timelineTtlMs))
  }

  /** The timeline another node (or this one, earlier) left for `playbackId`; null when none, or Redis is slow or down. */
  async loadTimeline(playbackId: string): Promise<Timeline | null> {
    let timer: NodeJS.Timeout | undefined
    try {
      const raw = await Promise.race([
        this.redis.get(this.timelineKey(playbackId)),
        new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), TIMELINE_READ_MS)))
      ])
      return parseTimeline(raw)
    } catch (err) {
      this.opts.log.warn({ err: { message: (err as Error).message } }, 'timeline not read: the stream starts a new one')
      return null
    } finally {
      clearTimeout(timer)
    }
  }

  /** The stream is over for good: its timeline goes (an ended stream never comes back). */
  forgetTimeline(playbackId: string): void {
    this.track(this.redis.del(this.timelineKey(playbackId)))
  }

  private async refresh(): Promise<void> {
    if (this.claimed.size === 0 || this.redis.status !== 'ready') return
    const batch = this.redis.pipeline()
    for (const [id, record] of this.claimed) batch.eval(REFRESH_IF_MINE, 1, this.holderKey(id), record, this.claimTtlMs)
    await batch.exec().catch((err: unknown) => this.opts.log.warn({ err: { message: (err as Error).message } }, 'playback claims not refreshed'))
  }

  private track(p: Promise<unknown>): void {
    const q = p.catch((err: unknown) => this.opts.log.warn({ err: { message: (err as Error).message } }, 'playback directory write failed'))
    this.pending.add(q)
    void q.finally(() => this.pending.delete(q))
  }

  /** Releases what is still claimed, waits for the writes in flight, and quits. */
  async close(): Promise<void> {
    this.timer?.stop()
    for (const id of [...this.claimed.keys()]) this.release(id)
    await Promise.allSettled([...this.pending])
    await this.redis.quit().catch(() => this.redis.disconnect())
  }
}

/**
 * A holder record: `{nodeId, url}` as every version writes it, plus `stream` from the versions that carry it (a
 * malformed `stream` is dropped, the holder kept: proxying never depends on it).
 */
export function parseHolder(raw: string | null): Holder | null {
  if (!raw) return null
  try {
    const v = JSON.parse(raw) as Partial<Holder> & { stream?: Partial<HeldStream> }
    if (typeof v.nodeId !== 'string' || typeof v.url !== 'string' || !/^https?:\/\//.test(v.url)) return null
    const s = v.stream
    const stream =
      s && Number.isSafeInteger(s.streamId) && (s.streamId as number) > 0 && typeof s.sessionId === 'string' && s.sessionId.length > 0 && s.sessionId.length <= 128
        ? { streamId: s.streamId as number, sessionId: s.sessionId }
        : undefined
    return { nodeId: v.nodeId, url: v.url, ...(stream ? { stream } : {}) }
  } catch {
    return null
  }
}

function parseTimeline(raw: string | null): Timeline | null {
  if (!raw) return null
  try {
    const v = JSON.parse(raw) as Timeline
    const int = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0
    if (!int(v.nextMsn) || !int(v.ast) || typeof v.tracks !== 'object' || v.tracks === null) return null
    if (v.endPdt !== undefined && !int(v.endPdt)) return null
    for (const t of Object.values(v.tracks)) if (!t || !int(t.discontinuities) || !int(t.nextInit)) return null
    return v
  } catch {
    return null
  }
}
