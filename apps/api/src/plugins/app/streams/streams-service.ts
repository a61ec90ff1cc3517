import { randomBytes, randomUUID } from 'node:crypto'
import { inTransaction, isDuplicateEntry, isMissingReference, isStreamKeyShaped, type DbClient, type StreamStatus } from '@livestream/db'
import type { StreamEvent } from '@livestream/events'
import { DomainError, UserGoneError } from '../domain-errors.js'
import { canTransition, TransitionError } from './lifecycle.js'
import { createStreamStore, outboxEntryOf, type EventOutcome, type Page, type ParticipantRow } from './stream-store.js'
import type { Owner, StreamRow, UrlConfig } from './stream-view.js'
import { noStreamCache, type StreamCache } from './stream-cache.js'
import { noPlatformEvents, platformEventId, type PlatformEventType, type PlatformEvents } from '../platform-events.js'
import { createOutboxStore, type OutboxEntry } from './event-outbox.js'
import { createStreamAnnouncer, type AnnouncerLog, type RelayOptions, type RelayRound } from './stream-announcer.js'

export type { ParticipantRow, Page } from './stream-store.js'
export type Outcome = Exclude<EventOutcome, 'not-joined' | 'not-published'>

export interface TransitionContext {
  /** The user asking; must own the stream. Absent for the reaper. */
  actorUserId?: number
  at?: Date
  ingestNodeId?: string
  playbackBaseUrl?: string
  reason?: string
  /** For the reaper: a move the rules refuse is reported (`changed: false`) instead of thrown. */
  lenient?: boolean
  /** For the reaper: checked on the locked row; false leaves the stream as it is (`changed: false`). */
  onlyIf?: (row: StreamRow) => boolean
}

/** A node's latest report, as the reaper reads it: when, and which streams it holds. */
export interface NodeReport {
  at: number
  streamIds: readonly number[]
}

export interface Reaped {
  streamId: number
  nodeId: string
  reason: 'node-lost' | 'not-on-node'
}

/** The reason a stream made live by hand ends with when no publisher reached it in time. */
export const NO_PUBLISHER = 'no-publisher'

/** A viewer left before their join was applied (deliveries race): retried, so the join lands first. */
export class ViewerNotJoinedError extends Error {
  constructor(streamId: number, userId: number) {
    super(`viewer ${userId} left stream ${streamId} before their join was applied`)
    this.name = 'ViewerNotJoinedError'
  }
}

/**
 * A publisher's unpublish was delivered before its publish (deliveries race; ingest sends them in order): retried, so
 * the stream goes live, with its start recorded and announced, before it ends.
 */
export class PublishNotAppliedError extends Error {
  constructor(streamId: number, sessionId: string) {
    super(`the unpublish of session ${sessionId} reached stream ${streamId} before its publish was applied`)
    this.name = 'PublishNotAppliedError'
  }
}

/**
 * A heartbeat must be this much newer than the moment a stream went live (or was last written) before the stream's
 * absence from it counts: the published event and the heartbeat travel separately and may cross, and an unpublish
 * that follows a late publish (retried after overtaking it) must have time to arrive.
 */
const ABSENCE_GRACE_MS = 5_000

const REF_ALPHABET = '23456789ABCDEFGHJKLMNPQRSTUVWXYZ'
function newRefNo(): string {
  const bytes = randomBytes(8)
  let out = 'LS-'
  for (const b of bytes) out += REF_ALPHABET[b % REF_ALPHABET.length]
  return out
}
/** Public and unguessable, unrelated to the key: names the media folders and URLs. */
const newPlaybackId = () => randomBytes(12).toString('base64url')
const newStreamKey = () => randomUUID()

const notFound = () => new DomainError('not-found', 'stream not found')

export interface StreamsServiceOptions {
  /** Reads of one stream and list pages; told of every committed change. */
  cache?: StreamCache
  /** Where committed changes are announced to the platform (webhooks, live updates). */
  events?: PlatformEvents
  /** The public URLs the announced stream views carry. */
  urls?: UrlConfig
  /** How long a node's viewer report counts after it was received (`VIEWER_REPORT_TTL_MS`). */
  viewerReportTtlMs?: number
  /** Where announcements that failed after their commit are told of (they stay in the outbox). */
  log?: AnnouncerLog
}

const NO_URLS: UrlConfig = { streamServerUrl: 'http://localhost:8000', rtmpPublicUrl: 'rtmp://localhost:1935' }

/**
 * The stream lifecycle and participants: the one place their rules live. HTTP routes, the reaper and the queue
 * consumer all come through here; every statement is in `stream-store.ts`. Reads of one stream and list pages go
 * through `cache`, and every method that changes a stream tells the cache once it has committed, then announces the
 * change on `events` (never with the key: the views announced are the public ones).
 */
export function createStreamsService(client: Pick<DbClient, 'pool'>, opts: StreamsServiceOptions = {}) {
  const store = createStreamStore(client.pool, opts.viewerReportTtlMs === undefined ? {} : { viewerReportTtlMs: opts.viewerReportTtlMs })
  const cache = opts.cache ?? noStreamCache
  const events = opts.events ?? noPlatformEvents
  const urls = opts.urls ?? NO_URLS

  const outbox = createOutboxStore(store.pool)
  const announcer = createStreamAnnouncer({ store, outbox, events, urls, ...(opts.log ? { log: opts.log } : {}) })

  /** The outbox entry of a change a route makes: a fresh event id, the change's instant. */
  const entryOf = (type: PlatformEventType, streamId: number, at: Date, reason: string | null = null): OutboxEntry => ({
    eventId: platformEventId(),
    type,
    streamId,
    participantUserId: null,
    reason,
    occurredAt: at
  })

  async function mustGet(id: number): Promise<StreamRow> {
    const row = await store.byId(id)
    if (!row) throw notFound()
    return row
  }

  const service = {
    async create(userId: number, title: string): Promise<StreamRow> {
      for (let attempt = 0; ; attempt++) {
        try {
          const eventId = platformEventId()
          const id = await store.insert({ refNo: newRefNo(), title, streamKey: newStreamKey(), playbackId: newPlaybackId(), userId }, eventId)
          cache.changed(id)
          const row = await mustGet(id)
          await announcer.announce({ eventId, type: 'stream.created', streamId: id, participantUserId: null, reason: null, occurredAt: row.createdAt })
          return row
        } catch (err) {
          // A random id collided: draw again (vanishingly rare).
          if (isDuplicateEntry(err) && attempt < 3) continue
          if (isMissingReference(err)) throw new UserGoneError(userId)
          throw err
        }
      }
    },

    /** A page of streams, newest first; lists never carry keys, so a page reads the same for everyone. */
    list(filter: Page & { status?: StreamStatus | undefined; userId?: number | undefined }) {
      const key = `${filter.status ?? ''}:${filter.userId ?? ''}:${filter.page}:${filter.limit}`
      return cache.readPage(key, () => store.list(filter))
    },

    async getById(id: number): Promise<{ stream: StreamRow; owner: Owner }> {
      const found = await cache.readStream(id, 'row', () => store.byIdWithOwner(id))
      if (!found) throw notFound()
      return found
    },

    /** Someone else's key answers exactly like a key that does not exist. */
    async getByKey(ownerId: number, streamKey: string): Promise<StreamRow> {
      // The column ignores trailing spaces (PAD SPACE): a key of another shape is no key, as at ingest.
      const row = isStreamKeyShaped(streamKey) ? await store.byKey(ownerId, streamKey) : undefined
      if (!row) throw notFound()
      return row
    },

    async rotateKey(actorUserId: number, id: number): Promise<StreamRow> {
      const entry = entryOf('stream.key_rotated', id, new Date())
      await inTransaction(store.pool, async (conn) => {
        const row = await store.lock(conn, id)
        if (!row) throw notFound()
        if (row.userId !== actorUserId) throw new DomainError('forbidden', 'only the stream owner can rotate its key')
        if (row.status === 'ended') throw new DomainError('conflict', 'cannot rotate the key of an ended stream')
        await store.setKey(conn, id, newStreamKey())
        await outbox.write(conn, entry)
      })
      cache.changed(id)
      const row = await mustGet(id)
      await announcer.announce(entry)
      return row
    },

    /**
     * Moves a stream along its lifecycle, under the stream row's lock. `live` records when and where (node, playback
     * base); `ended` records when and why, and closes every open participation at the same instant. Either writes its
     * outbox entry in the same transaction.
     */
    async transition(id: number, to: StreamStatus, ctx: TransitionContext = {}): Promise<{ changed: boolean; stream: StreamRow }> {
      const entry = await inTransaction(store.pool, async (conn): Promise<OutboxEntry | undefined> => {
        const row = await store.lock(conn, id)
        if (!row) throw notFound()
        if (ctx.actorUserId !== undefined && row.userId !== ctx.actorUserId) {
          throw new DomainError('forbidden', 'only the stream owner can change its status')
        }
        if (!canTransition(row.status, to)) {
          if (ctx.lenient) return undefined
          throw new TransitionError(row.status, to)
        }
        if (ctx.onlyIf && !ctx.onlyIf(row)) return undefined
        const at = ctx.at ?? new Date()
        let entry: OutboxEntry
        if (to === 'live') {
          await store.live(conn, id, at, ctx.ingestNodeId ?? null, ctx.playbackBaseUrl ?? null)
          entry = entryOf('stream.live', id, at)
        } else {
          // `pending` is no move's target (see lifecycle.ts): what is left is the end.
          const reason = ctx.reason ?? (ctx.actorUserId ? 'ended-by-owner' : 'ended')
          await store.end(conn, id, at, reason)
          entry = entryOf('stream.ended', id, at, reason)
        }
        await outbox.write(conn, entry)
        return entry
      })
      const stream = await mustGet(id)
      if (entry) {
        cache.changed(id)
        await announcer.announce(entry)
      }
      return { changed: entry !== undefined, stream }
    },

    /**
     * Joins (or re-joins) a stream: one row per (stream, user); the owner is the host. One round trip with its outbox
     * entry, so joins of one stream run side by side while a concurrent end waits for them (see `stream-store.ts`).
     */
    async join(streamId: number, userId: number): Promise<ParticipantRow> {
      const at = new Date()
      const eventId = platformEventId()
      const { written, announced } = await store.join(streamId, userId, at, eventId).catch((err: unknown) => {
        // The stream is read in the same statement, so a missing reference can only be the user.
        throw isMissingReference(err) ? new UserGoneError(userId) : err
      })
      if (written === 0) {
        // Nothing written: the stream is missing or ended, or the caller was already in (a no-op re-join).
        const row = await store.status(streamId)
        if (!row) throw notFound()
        if (row.status === 'ended') throw new DomainError('conflict', 'cannot join an ended stream')
      }
      const participant = await service.participant(streamId, userId)
      if (announced) {
        await announcer.announce({ eventId, type: 'participant.joined', streamId, participantUserId: userId, reason: null, occurredAt: at })
      }
      return participant
    },

    async leave(streamId: number, userId: number): Promise<ParticipantRow> {
      const at = new Date()
      const eventId = platformEventId()
      const { written } = await store.leave(streamId, userId, at, eventId)
      if (written === 0 && !(await store.status(streamId))) throw notFound()
      // Not in the stream: 404 from here; already left: the row as it is.
      const participant = await service.participant(streamId, userId)
      if (written > 0) {
        await announcer.announce({ eventId, type: 'participant.left', streamId, participantUserId: userId, reason: null, occurredAt: at })
      }
      return participant
    },

    async participant(streamId: number, userId: number): Promise<ParticipantRow> {
      const row = await store.participant(streamId, userId)
      if (!row) throw new DomainError('not-found', 'not a participant of this stream')
      return row
    },

    async participants(streamId: number, page: Page) {
      await mustGet(streamId)
      return store.participants(streamId, page)
    },

    /**
     * Applies one ingest event (published, unpublished, viewer joined or left) exactly once by its event id, with the
     * same guards as the routes; its effect, its ledger row and its outbox entry are one transaction (see
     * `stream-store.ts`). A duplicate announces nothing: had the first delivery's process died before announcing, its
     * outbox entry is the relay's. A leave whose join has not been applied yet throws ViewerNotJoinedError, and an
     * unpublish whose publish has not, PublishNotAppliedError: both are retried by the queue.
     */
    async applyEvent(event: StreamEvent): Promise<Outcome> {
      const outcome = await store.writeEvent(event)
      if (outcome === 'not-joined') throw new ViewerNotJoinedError(event.streamId, (event as { userId: number }).userId)
      if (outcome === 'not-published') throw new PublishNotAppliedError(event.streamId, event.sessionId)
      if (outcome !== 'applied') return outcome
      if (event.type.startsWith('stream.')) cache.changed(event.streamId)
      const entry = outboxEntryOf(event)
      if (entry) await announcer.announce(entry)
      return outcome
    },

    /** Streams by status, every status present (0 when none). */
    async countByStatus(): Promise<Record<StreamStatus, number>> {
      const counts: Record<StreamStatus, number> = { pending: 0, live: 0, ended: 0 }
      for (const r of await store.countByStatus()) counts[r.status] = Number(r.n)
      return counts
    },

    /**
     * Sets each live stream's viewer count to the sum of its fresh reports where a node stopped reporting (gone, or
     * its stream moved away), and announces each change as `stream.viewers`. Reports keep counts fresh while they
     * come; this is for the reports that stop. Returns the streams changed.
     */
    async refreshViewers(): Promise<number[]> {
      const changed = await store.refreshViewerCounts()
      for (const entry of changed) {
        cache.changed(entry.streamId)
        await announcer.announce(entry)
      }
      return changed.map((e) => e.streamId)
    },

    /**
     * One round of the outbox relay: announcements left behind (their process died after the commit, or a sink failed)
     * are emitted again under their ids. Safe to run in every process at once.
     */
    relayOutbox: (opts: RelayOptions): Promise<RelayRound> => announcer.relay(opts),

    /**
     * Ends live streams whose ingest node is gone: silent for longer than `nodeTimeoutMs` (`node-lost`), or alive but no
     * longer holding the stream, as after a restart (`not-on-node`). Streams made live by hand (`POST /start`, no node)
     * are left alone here (see `reapUnpublished`). Each end is a lenient transition, so an already-ended stream is not touched twice and several
     * api instances may reap at once.
     */
    async reapLost(reports: ReadonlyMap<string, NodeReport>, nodeTimeoutMs: number, now = Date.now()): Promise<Reaped[]> {
      const reaped: Reaped[] = []
      for (const s of await store.liveOnNodes()) {
        // From when the stream went live or the api last wrote it, whichever is later: events applied late (retried,
        // or replayed from a node's outbox after a restart) keep the instant they happened, and the unpublish that
        // follows such a publish must get the grace to arrive and end the stream for its own reason.
        const settled = s.settledAt.getTime()
        const hb = reports.get(s.nodeId)
        let reason: Reaped['reason'] | null = null
        if (!hb) {
          // Never heard from (or forgotten): measure the silence from then.
          if (now - settled > nodeTimeoutMs) reason = 'node-lost'
        } else if (now - hb.at > nodeTimeoutMs) {
          reason = 'node-lost'
        } else if (!hb.streamIds.includes(s.id) && hb.at - settled > ABSENCE_GRACE_MS) {
          reason = 'not-on-node'
        }
        if (!reason) continue
        const { changed } = await service.transition(s.id, 'ended', { reason, lenient: true })
        if (changed) reaped.push({ streamId: s.id, nodeId: s.nodeId, reason })
      }
      return reaped
    },

    /**
     * Ends streams made live by hand (`POST /start`) that no publisher has reached within `timeoutMs` of going live,
     * with reason `no-publisher`; without it they stayed live for ever. A publish that lands while this runs wins: the
     * end is checked again on the locked row (still no node), so a stream a publisher has just reached stays live.
     * Returns the ids ended.
     */
    async reapUnpublished(timeoutMs: number, now = Date.now()): Promise<number[]> {
      const ended: number[] = []
      for (const { id } of await store.liveWithoutPublisherSince(new Date(now - timeoutMs))) {
        const { changed } = await service.transition(id, 'ended', {
          reason: NO_PUBLISHER,
          lenient: true,
          onlyIf: (row) => row.status === 'live' && row.ingestNodeId === null
        })
        if (changed) ended.push(id)
      }
      return ended
    },

    /**
     * Retention of the event ledger: viewer reports (one every few seconds per live stream and node) recorded more than
     * `retentionMs` ago are deleted, in batches, at most `maxBatches` per call; the lifecycle events stay. 0: kept.
     * Returns how many rows went.
     */
    async pruneViewerLedger(retentionMs: number, now = Date.now(), batch = 5_000, maxBatches = 20): Promise<number> {
      if (retentionMs <= 0) return 0
      const before = new Date(now - retentionMs)
      let pruned = 0
      for (let i = 0; i < maxBatches; i++) {
        const n = await store.pruneViewerReports(before, batch)
        pruned += n
        if (n < batch) break
      }
      return pruned
    },

    /** The stream as the database has it now, past the read cache (live updates' snapshots). */
    getFresh: mustGet,

    /** How many are in the stream now (open participations). */
    participantCount: (streamId: number) => store.openParticipants(streamId),

    /** A stream by its public playback id. */
    async getByPlaybackId(playbackId: string): Promise<StreamRow> {
      const row = await store.byPlaybackId(playbackId)
      if (!row) throw notFound()
      return row
    }
  }
  return service
}

export type StreamsService = ReturnType<typeof createStreamsService>
