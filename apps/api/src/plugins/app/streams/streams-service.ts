import { randomBytes, randomUUID } from 'node:crypto'
import { and, count, desc, eq, sql, type SQL } from 'drizzle-orm'
import { isDuplicateEntry, isMissingReference, isStreamKeyShaped, streamParticipants, streams, users, type Database, type DbClient, type StreamStatus, type Transaction } from '@livestream/db'
import type { StreamEvent } from '@livestream/events'
import { ConflictError, ForbiddenError, NotFoundError, UserGoneError } from '../../../errors.js'
import { canTransition, TransitionError } from './lifecycle.js'
import { applyEvent, type Outcome } from './apply-event.js'
import { inTransaction, streamWrites as w } from './stream-writes.js'
import type { Owner, StreamRow } from './stream-view.js'
import { noStreamCache, type StreamCache } from './stream-cache.js'

export type ParticipantRow = typeof streamParticipants.$inferSelect & { displayName: string }

export interface TransitionContext {
  /** The user asking; must own the stream. Absent for ingest events and the reaper. */
  actorUserId?: number
  at?: Date
  ingestNodeId?: string
  playbackBaseUrl?: string
  reason?: string
  /** For events: a move the rules refuse is reported (`changed: false`) instead of thrown. */
  lenient?: boolean
}

export interface Page {
  page: number
  limit: number
}

type Runner = Database | Transaction

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

/**
 * The stream lifecycle and participants: the one place their rules live. HTTP routes, the reaper and the queue
 * consumer all come through here, and every move is written by the same statements (`stream-writes.ts`). Reads take
 * an optional transaction so callers can compose; reads of one stream go through `cache` when no transaction is given
 * (routes cache list pages), and every method that changes a stream tells the cache once it has committed.
 */
export function createStreamsService(client: Pick<DbClient, 'db' | 'pool'>, cache: StreamCache = noStreamCache) {
  const { db, pool } = client
  // The hottest read, prepared once (no query building per request).
  const byIdWithOwner = db
    .select({ stream: streams, owner: { id: users.id, displayName: users.displayName } })
    .from(streams)
    .innerJoin(users, eq(users.id, streams.userId))
    .where(eq(streams.id, sql.placeholder('id')))
    .limit(1)
    .prepare()

  async function lockStream(tx: Transaction, id: number): Promise<StreamRow> {
    const [row] = await tx.select().from(streams).where(eq(streams.id, id)).for('update')
    if (!row) throw new NotFoundError('stream not found')
    return row
  }

  async function mustGet(run: Runner, id: number): Promise<StreamRow> {
    const [row] = await run.select().from(streams).where(eq(streams.id, id)).limit(1)
    if (!row) throw new NotFoundError('stream not found')
    return row
  }

  /** Once `work` (a transaction of ours) has committed, stream `id` changed. */
  async function committed<T>(id: number, work: Promise<T>): Promise<T> {
    const result = await work
    cache.changed(id)
    return result
  }

  const service = {
    async create(userId: number, title: string, tx?: Transaction): Promise<StreamRow> {
      const run = tx ?? db
      for (let attempt = 0; ; attempt++) {
        try {
          const [res] = await run
            .insert(streams)
            .values({ refNo: newRefNo(), title, streamKey: newStreamKey(), playbackId: newPlaybackId(), userId })
          if (!tx) cache.changed(res.insertId)
          return mustGet(run, res.insertId)
        } catch (err) {
          // A random id collided: draw again (vanishingly rare).
          if (isDuplicateEntry(err) && attempt < 3) continue
          if (isMissingReference(err)) throw new UserGoneError(userId)
          throw err
        }
      }
    },

    async list(filter: Page & { status?: StreamStatus; userId?: number }, tx?: Transaction) {
      const run = tx ?? db
      const where: SQL[] = []
      if (filter.status) where.push(eq(streams.status, filter.status))
      if (filter.userId !== undefined) where.push(eq(streams.userId, filter.userId))
      const cond = where.length ? and(...where) : undefined
      const [rows, [total]] = await Promise.all([
        run
          .select()
          .from(streams)
          .where(cond)
          .orderBy(desc(streams.id))
          .limit(filter.limit)
          .offset((filter.page - 1) * filter.limit),
        run.select({ n: count() }).from(streams).where(cond)
      ])
      return { rows, count: total?.n ?? 0 }
    },

    async getById(id: number, tx?: Transaction): Promise<{ stream: StreamRow; owner: Owner }> {
      const [row] = tx
        ? await tx
            .select({ stream: streams, owner: { id: users.id, displayName: users.displayName } })
            .from(streams)
            .innerJoin(users, eq(users.id, streams.userId))
            .where(eq(streams.id, id))
            .limit(1)
        : await cache.readStream(id, 'row', () => byIdWithOwner.execute({ id }))
      if (!row) throw new NotFoundError('stream not found')
      return row
    },

    /** Someone else's key answers exactly like a key that does not exist. */
    async getByKey(ownerId: number, streamKey: string, tx?: Transaction): Promise<StreamRow> {
      // The column ignores trailing spaces (PAD SPACE): a key of another shape is no key, as at ingest.
      if (!isStreamKeyShaped(streamKey)) throw new NotFoundError('stream not found')
      const run = tx ?? db
      const [row] = await run
        .select()
        .from(streams)
        .where(and(eq(streams.streamKey, streamKey), eq(streams.userId, ownerId)))
        .limit(1)
      if (!row) throw new NotFoundError('stream not found')
      return row
    },

    async rotateKey(actorUserId: number, id: number, tx?: Transaction): Promise<StreamRow> {
      if (!tx) return committed(id, db.transaction((t) => service.rotateKey(actorUserId, id, t)))
      const row = await lockStream(tx, id)
      if (row.userId !== actorUserId) throw new ForbiddenError('only the stream owner can rotate its key')
      if (row.status === 'ended') throw new ConflictError('cannot rotate the key of an ended stream')
      await tx.update(streams).set({ streamKey: newStreamKey() }).where(eq(streams.id, id))
      return mustGet(tx, id)
    },

    /**
     * Moves a stream along its lifecycle, under the stream row's lock. `live` records when and where (node, playback
     * base); `ended` records when and why, and closes every open participation at the same instant.
     */
    async transition(id: number, to: StreamStatus, ctx: TransitionContext = {}): Promise<{ changed: boolean; stream: StreamRow }> {
      const changed = await inTransaction(pool, async (conn) => {
        const row = await w.lock(conn, id)
        if (!row) throw new NotFoundError('stream not found')
        if (ctx.actorUserId !== undefined && row.user_id !== ctx.actorUserId) {
          throw new ForbiddenError('only the stream owner can change its status')
        }
        if (!canTransition(row.status, to)) {
          if (ctx.lenient) return false
          throw new TransitionError(row.status, to)
        }
        const at = ctx.at ?? new Date()
        if (to === 'live') await w.live(conn, id, at, ctx.ingestNodeId ?? null, ctx.playbackBaseUrl ?? null)
        else if (to === 'ended') await w.ended(conn, id, at, ctx.reason ?? (ctx.actorUserId ? 'ended-by-owner' : 'ended'))
        return true
      })
      if (changed) cache.changed(id)
      return { changed, stream: await mustGet(db, id) }
    },

    /** A live stream reconnected through another node: playback follows it. */
    async moveToNode(id: number, where: { ingestNodeId: string; playbackBaseUrl: string }): Promise<void> {
      await w.moveToNode(pool, id, where.ingestNodeId, where.playbackBaseUrl)
      cache.changed(id)
    },

    /**
     * Joins (or re-joins) a stream: one row per (stream, user); the owner is the host. One statement, so joins of one
     * stream run side by side while a concurrent end waits for them (see `stream-writes.ts`).
     */
    async join(streamId: number, userId: number): Promise<ParticipantRow> {
      const written = await w.join(pool, streamId, userId, new Date()).catch((err: unknown) => {
        // The stream is read in the same statement, so a missing reference can only be the user.
        throw isMissingReference(err) ? new UserGoneError(userId) : err
      })
      if (written === 0) {
        // Nothing written: the stream is missing or ended, or the caller was already in (a no-op re-join).
        const row = await w.status(pool, streamId)
        if (!row) throw new NotFoundError('stream not found')
        if (row.status === 'ended') throw new ConflictError('cannot join an ended stream')
      }
      return service.participant(streamId, userId)
    },

    async leave(streamId: number, userId: number): Promise<ParticipantRow> {
      if ((await w.leave(pool, streamId, userId, new Date())) === 0 && !(await w.status(pool, streamId))) {
        throw new NotFoundError('stream not found')
      }
      // Not in the stream: 404 from here; already left: the row as it is.
      return service.participant(streamId, userId)
    },

    /**
     * Applies one ingest event (published, unpublished, viewer joined or left) exactly once by its event id, with the
     * same rules and writes as the routes; see `apply-event.ts`.
     */
    async applyEvent(event: StreamEvent): Promise<Outcome> {
      const outcome = await applyEvent(pool, event)
      if (outcome === 'applied' && event.type.startsWith('stream.')) cache.changed(event.streamId)
      return outcome
    },

    async participant(streamId: number, userId: number, tx?: Transaction): Promise<ParticipantRow> {
      const [row] = await (tx ?? db)
        .select({ p: streamParticipants, displayName: users.displayName })
        .from(streamParticipants)
        .innerJoin(users, eq(users.id, streamParticipants.userId))
        .where(and(eq(streamParticipants.streamId, streamId), eq(streamParticipants.userId, userId)))
        .limit(1)
      if (!row) throw new NotFoundError('not a participant of this stream')
      return { ...row.p, displayName: row.displayName }
    },

    async participants(streamId: number, page: Page, tx?: Transaction) {
      const run = tx ?? db
      await mustGet(run, streamId)
      const where = eq(streamParticipants.streamId, streamId)
      const [rows, [total]] = await Promise.all([
        run
          .select({ p: streamParticipants, displayName: users.displayName })
          .from(streamParticipants)
          .innerJoin(users, eq(users.id, streamParticipants.userId))
          .where(where)
          .orderBy(streamParticipants.id)
          .limit(page.limit)
          .offset((page.page - 1) * page.limit),
        run.select({ n: count() }).from(streamParticipants).where(where)
      ])
      return { rows: rows.map((r) => ({ ...r.p, displayName: r.displayName })), count: total?.n ?? 0 }
    }
  }
  return service
}

export type StreamsService = ReturnType<typeof createStreamsService>
