import { randomBytes, randomUUID } from 'node:crypto'
import { inTransaction, isDuplicateEntry, isMissingReference, isStreamKeyShaped, type DbClient, type StreamStatus } from '@livestream/db'
import type { StreamEvent } from '@livestream/events'
import { DomainError, UserGoneError } from '../domain-errors.js'
import { canTransition, TransitionError } from './lifecycle.js'
import { createStreamStore, type EventOutcome, type Page, type ParticipantRow } from './stream-store.js'
import type { Owner, StreamRow } from './stream-view.js'
import { noStreamCache, type StreamCache } from './stream-cache.js'

export type { ParticipantRow, Page } from './stream-store.js'
export type Outcome = Exclude<EventOutcome, 'not-joined'>

export interface TransitionContext {
  /** The user asking; must own the stream. Absent for the reaper. */
  actorUserId?: number
  at?: Date
  ingestNodeId?: string
  playbackBaseUrl?: string
  reason?: string
  /** For the reaper: a move the rules refuse is reported (`changed: false`) instead of thrown. */
  lenient?: boolean
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

/** A viewer left before their join was applied (deliveries race): retried, so the join lands first. */
export class ViewerNotJoinedError extends Error {
  constructor(streamId: number, userId: number) {
    super(`viewer ${userId} left stream ${streamId} before their join was applied`)
    this.name = 'ViewerNotJoinedError'
  }
}

/**
 * A heartbeat must be this much newer than the moment a stream went live before the stream's absence from it counts:
 * the published event and the heartbeat travel separately and may cross.
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

/**
 * The stream lifecycle and participants: the one place their rules live. HTTP routes, the reaper and the queue
 * consumer all come through here; every statement is in `stream-store.ts`. Reads of one stream and list pages go
 * through `cache`, and every method that changes a stream tells the cache once it has committed.
 */
export function createStreamsService(client: Pick<DbClient, 'pool'>, cache: StreamCache = noStreamCache) {
  const store = createStreamStore(client.pool)

  async function mustGet(id: number): Promise<StreamRow> {
    const row = await store.byId(id)
    if (!row) throw notFound()
    return row
  }

  const service = {
    async create(userId: number, title: string): Promise<StreamRow> {
      for (let attempt = 0; ; attempt++) {
        try {
          const id = await store.insert({ refNo: newRefNo(), title, streamKey: newStreamKey(), playbackId: newPlaybackId(), userId })
          cache.changed(id)
          return mustGet(id)
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
      await inTransaction(store.pool, async (conn) => {
        const row = await store.lock(conn, id)
        if (!row) throw notFound()
        if (row.userId !== actorUserId) throw new DomainError('forbidden', 'only the stream owner can rotate its key')
        if (row.status === 'ended') throw new DomainError('conflict', 'cannot rotate the key of an ended stream')
        await store.setKey(conn, id, newStreamKey())
      })
      cache.changed(id)
      return mustGet(id)
    },

    /**
     * Moves a stream along its lifecycle, under the stream row's lock. `live` records when and where (node, playback
     * base); `ended` records when and why, and closes every open participation at the same instant.
     */
    async transition(id: number, to: StreamStatus, ctx: TransitionContext = {}): Promise<{ changed: boolean; stream: StreamRow }> {
      const changed = await inTransaction(store.pool, async (conn) => {
        const row = await store.lock(conn, id)
        if (!row) throw notFound()
        if (ctx.actorUserId !== undefined && row.userId !== ctx.actorUserId) {
          throw new DomainError('forbidden', 'only the stream owner can change its status')
        }
        if (!canTransition(row.status, to)) {
          if (ctx.lenient) return false
          throw new TransitionError(row.status, to)
        }
        const at = ctx.at ?? new Date()
        if (to === 'live') await store.live(conn, id, at, ctx.ingestNodeId ?? null, ctx.playbackBaseUrl ?? null)
        else if (to === 'ended') await store.end(conn, id, at, ctx.reason ?? (ctx.actorUserId ? 'ended-by-owner' : 'ended'))
        return true
      })
      if (changed) cache.changed(id)
      return { changed, stream: await mustGet(id) }
    },

    /**
     * Joins (or re-joins) a stream: one row per (stream, user); the owner is the host. One statement, so joins of one
     * stream run side by side while a concurrent end waits for them (see `stream-store.ts`).
     */
    async join(streamId: number, userId: number): Promise<ParticipantRow> {
      const written = await store.join(streamId, userId, new Date()).catch((err: unknown) => {
        // The stream is read in the same statement, so a missing reference can only be the user.
        throw isMissingReference(err) ? new UserGoneError(userId) : err
      })
      if (written === 0) {
        // Nothing written: the stream is missing or ended, or the caller was already in (a no-op re-join).
        const row = await store.status(streamId)
        if (!row) throw notFound()
        if (row.status === 'ended') throw new DomainError('conflict', 'cannot join an ended stream')
      }
      return service.participant(streamId, userId)
    },

    async leave(streamId: number, userId: number): Promise<ParticipantRow> {
      if ((await store.leave(streamId, userId, new Date())) === 0 && !(await store.status(streamId))) throw notFound()
      // Not in the stream: 404 from here; already left: the row as it is.
      return service.participant(streamId, userId)
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
     * same guards as the routes; its effect and its ledger row are one transaction (see `stream-store.ts`). A leave
     * whose join has not been applied yet throws ViewerNotJoinedError, to be retried.
     */
    async applyEvent(event: StreamEvent): Promise<Outcome> {
      const outcome = await store.writeEvent(event)
      if (outcome === 'not-joined') throw new ViewerNotJoinedError(event.streamId, (event as { userId: number }).userId)
      if (outcome === 'applied' && event.type.startsWith('stream.')) cache.changed(event.streamId)
      return outcome
    },

    /** Streams by status, every status present (0 when none). */
    async countByStatus(): Promise<Record<StreamStatus, number>> {
      const counts: Record<StreamStatus, number> = { pending: 0, live: 0, ended: 0 }
      for (const r of await store.countByStatus()) counts[r.status] = Number(r.n)
      return counts
    },

    /**
     * Ends live streams whose ingest node is gone: silent for longer than `nodeTimeoutMs` (`node-lost`), or alive but no
     * longer holding the stream, as after a restart (`not-on-node`). Streams made live by hand (`POST /start`, no node)
     * are left alone. Each end is a lenient transition, so an already-ended stream is not touched twice and several
     * api instances may reap at once.
     */
    async reapLost(reports: ReadonlyMap<string, NodeReport>, nodeTimeoutMs: number, now = Date.now()): Promise<Reaped[]> {
      const reaped: Reaped[] = []
      for (const s of await store.liveOnNodes()) {
        const liveSince = s.liveSince.getTime()
        const hb = reports.get(s.nodeId)
        let reason: Reaped['reason'] | null = null
        if (!hb) {
          // Never heard from (or forgotten): measure the silence from when the stream went live.
          if (now - liveSince > nodeTimeoutMs) reason = 'node-lost'
        } else if (now - hb.at > nodeTimeoutMs) {
          reason = 'node-lost'
        } else if (!hb.streamIds.includes(s.id) && hb.at - liveSince > ABSENCE_GRACE_MS) {
          reason = 'not-on-node'
        }
        if (!reason) continue
        const { changed } = await service.transition(s.id, 'ended', { reason, lenient: true })
        if (changed) reaped.push({ streamId: s.id, nodeId: s.nodeId, reason })
      }
      return reaped
    }
  }
  return service
}

export type StreamsService = ReturnType<typeof createStreamsService>
