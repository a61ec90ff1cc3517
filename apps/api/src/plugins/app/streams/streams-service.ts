import { randomBytes, randomUUID } from 'node:crypto'
import { and, count, desc, eq, inArray, isNull, sql, type SQL } from 'drizzle-orm'
import { streamParticipants, streams, users, type Database, type StreamStatus, type Transaction } from '@livestream/db'
import { ConflictError, ForbiddenError, NotFoundError } from '../../../errors.js'
import { canTransition, sourcesOf, TransitionError } from './lifecycle.js'
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

const isDuplicate = (err: unknown) => (err as { code?: string }).code === 'ER_DUP_ENTRY' || (err as { cause?: { code?: string } }).cause?.code === 'ER_DUP_ENTRY'

/**
 * The stream lifecycle and participants: the one place their rules live. HTTP routes and the reaper come through
 * here (the queue consumer applies the same rules in SQL). Every method takes an optional transaction so callers can
 * compose. Reads of one stream go through `cache` when no transaction is given (routes cache list pages); a method that
 * commits its own transaction tells the cache what changed, and a caller passing its own transaction must call
 * `cache.changed(id)` after committing it.
 */
export function createStreamsService(db: Database, cache: StreamCache = noStreamCache) {
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
          if (isDuplicate(err) && attempt < 3) continue
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
     * Moves a stream along its lifecycle. `live` records when and where (node, playback base); `ended` records when
     * and why, and closes every open participation at the same instant.
     */
    async transition(
      id: number,
      to: StreamStatus,
      ctx: TransitionContext = {},
      tx?: Transaction
    ): Promise<{ changed: boolean; stream: StreamRow }> {
      if (!tx) return committed(id, db.transaction((t) => service.transition(id, to, ctx, t)))
      const row = await lockStream(tx, id)
      if (ctx.actorUserId !== undefined && row.userId !== ctx.actorUserId) {
        throw new ForbiddenError('only the stream owner can change its status')
      }
      if (!canTransition(row.status, to)) {
        if (ctx.lenient) return { changed: false, stream: row }
        throw new TransitionError(row.status, to)
      }
      const at = ctx.at ?? new Date()
      const set =
        to === 'live'
          ? {
              status: to,
              startedAt: at,
              ingestNodeId: ctx.ingestNodeId ?? null,
              playbackBaseUrl: ctx.playbackBaseUrl ?? null
            }
          : to === 'ended'
            ? { status: to, endedAt: at, endedReason: ctx.reason ?? (ctx.actorUserId ? 'ended-by-owner' : 'ended') }
            : { status: to }
      await tx
        .update(streams)
        .set(set)
        .where(and(eq(streams.id, id), inArray(streams.status, sourcesOf(to))))
      if (to === 'ended') {
        await tx
          .update(streamParticipants)
          .set({ leftAt: at })
          .where(and(eq(streamParticipants.streamId, id), isNull(streamParticipants.leftAt)))
      }
      return { changed: true, stream: await mustGet(tx, id) }
    },

    /** A live stream reconnected through another node: playback follows it. */
    async moveToNode(id: number, where: { ingestNodeId: string; playbackBaseUrl: string }, tx?: Transaction): Promise<void> {
      await (tx ?? db)
        .update(streams)
        .set({ ingestNodeId: where.ingestNodeId, playbackBaseUrl: where.playbackBaseUrl })
        .where(and(eq(streams.id, id), eq(streams.status, 'live')))
      if (!tx) cache.changed(id)
    },

    /**
     * Joins (or re-joins) a stream: one row per (stream, user); the owner is the host. One statement: the stream row
     * is read under InnoDB's shared lock (INSERT ... SELECT), so joins of one stream run side by side while a
     * concurrent end waits for them, and a join that waited for an end finds the stream ended.
     */
    async join(streamId: number, userId: number, tx?: Transaction): Promise<ParticipantRow> {
      const run = tx ?? db
      const [res] = await run.execute(sql`
        INSERT INTO stream_participants (stream_id, user_id, role)
        SELECT id, ${userId}, IF(user_id = ${userId}, 'host', 'viewer') FROM streams WHERE id = ${streamId} AND status <> 'ended'
        ON DUPLICATE KEY UPDATE left_at = NULL`)
      if ((res as unknown as { affectedRows: number }).affectedRows === 0) {
        // Nothing written: the stream is missing or ended, or the caller was already in (a no-op re-join).
        const row = await mustGet(run, streamId)
        if (row.status === 'ended') throw new ConflictError('cannot join an ended stream')
      }
      return service.participant(streamId, userId, tx)
    },

    async leave(streamId: number, userId: number, tx?: Transaction): Promise<ParticipantRow> {
      const run = tx ?? db
      await mustGet(run, streamId)
      const current = await service.participant(streamId, userId, tx)
      if (current.leftAt === null) {
        await run
          .update(streamParticipants)
          .set({ leftAt: new Date() })
          .where(and(eq(streamParticipants.streamId, streamId), eq(streamParticipants.userId, userId), isNull(streamParticipants.leftAt)))
      }
      return service.participant(streamId, userId, tx)
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
