import { inTransaction } from '@livestream/db'
import type { PlatformEventType } from '../platform-events.js'
import type { Connection, Pool } from './stream-store.js'

/**
 * A platform event owed: what the stream row cannot say about a change (its id, type, participant, reason and when).
 * The event's data is rebuilt from the stream's current row whenever it is emitted.
 */
export interface OutboxEntry {
  eventId: string
  type: PlatformEventType
  streamId: number
  participantUserId: number | null
  reason: string | null
  occurredAt: Date
}

/** A row the relay claimed: the entry, how often the relay failed to emit it, and whether it is past giving up. */
export interface ClaimedEntry extends OutboxEntry {
  attempts: number
  expired: boolean
}

/**
 * The head of every outbox write: followed by `VALUES (?, ?, ?, ?, ?, ?)` (`outboxParams`) or by a `SELECT` of six
 * columns in this order, so that the change's own statements (multi-statement batches) can write it in their
 * transaction and round trip.
 */
export const OUTBOX_INSERT = 'INSERT INTO platform_event_outbox (event_id, type, stream_id, participant_user_id, reason, occurred_at)'

export const outboxParams = (e: OutboxEntry): unknown[] => [e.eventId, e.type, e.streamId, e.participantUserId, e.reason, e.occurredAt]

const CLAIM = `SELECT event_id AS eventId, type, stream_id AS streamId, participant_user_id AS participantUserId, reason,
  occurred_at AS occurredAt, attempts, created_at < NOW(3) - INTERVAL ? MICROSECOND AS expired
  FROM platform_event_outbox FORCE INDEX (platform_event_outbox_created_idx) WHERE created_at <= NOW(3) - INTERVAL ? MICROSECOND
  ORDER BY created_at, event_id LIMIT ? FOR UPDATE SKIP LOCKED`

const DELETE_ONE = 'DELETE FROM platform_event_outbox WHERE event_id = ?'
/** Entries deleted in one transaction at most. */
const DELETE_BATCH = 200

/**
 * The outbox's statements. Writes made with a change go through `OUTBOX_INSERT` inside the change's transaction; the
 * delete after a successful emit and the relay's claim are here.
 */
export function createOutboxStore(pool: Pool) {
  // Deletes after emission, coalesced: the ids asked for while one batch is in flight go together in the next, as one
  // multi-statement transaction (one round trip, one commit) instead of a commit each; every caller still waits for
  // its own batch, so an answer is never given before its entry is gone. One DELETE per id, by primary key, for the
  // reason given at `claim`.
  const queued: Array<{ id: string; done: () => void; fail: (err: unknown) => void }> = []
  let flushing = false
  async function flushDeletes() {
    flushing = true
    while (queued.length) {
      const batch = queued.splice(0, DELETE_BATCH)
      const ids = batch.map((b) => b.id)
      try {
        if (ids.length === 1) await pool.query(DELETE_ONE, ids)
        else {
          await inTransaction(pool, async (conn) => {
            await conn.query(['START TRANSACTION', ...ids.map(() => DELETE_ONE), 'COMMIT'].join('; '), ids)
          }, { selfCommitting: true })
        }
        for (const b of batch) b.done()
      } catch (err) {
        for (const b of batch) b.fail(err)
      }
    }
    flushing = false
  }

  return {
    /** Writes an entry on the change's connection, inside its transaction. */
    write: async (conn: Connection, e: OutboxEntry) => {
      await conn.query(`${OUTBOX_INSERT} VALUES (?, ?, ?, ?, ?, ?)`, outboxParams(e))
    },

    /** The event was emitted: nothing owed any more. Resolves once the entry is gone (its batch committed). */
    delete: (eventId: string): Promise<void> =>
      new Promise((done, fail) => {
        queued.push({ id: eventId, done, fail })
        if (!flushing) void flushDeletes()
      }),

    /**
     * Claims up to `limit` entries older than `afterMs`, oldest first, for as long as `work` runs, and applies what it
     * decided: `done` ids are deleted, `failed` ids have their attempts bumped. Entries another relay holds are skipped
     * (`SKIP LOCKED`), so several processes relay at once and each entry is emitted by one of them. The scan follows the
     * `created_at` index, so it stops at `limit` rows; READ COMMITTED, so it locks only the rows it returns, never the
     * gap at the end of the index where every change inserts its entry.
     */
    async claim(
      opts: { afterMs: number; expireAfterMs: number; limit: number },
      work: (entries: ClaimedEntry[]) => Promise<{ done: string[]; failed: string[] }>
    ): Promise<{ claimed: number; done: number; failed: number }> {
      return inTransaction(
        pool,
        async (conn) => {
          const [results] = await conn.query(
            `SET TRANSACTION ISOLATION LEVEL READ COMMITTED; START TRANSACTION; ${CLAIM}`,
            [opts.expireAfterMs * 1000, opts.afterMs * 1000, opts.limit]
          )
          const rows = ((results as unknown[]).at(-1) as Array<ClaimedEntry & { expired: number | boolean }>).map((r) => ({
            ...r,
            streamId: Number(r.streamId),
            participantUserId: r.participantUserId === null ? null : Number(r.participantUserId),
            expired: Boolean(r.expired)
          }))
          const { done, failed } = rows.length ? await work(rows) : { done: [], failed: [] }
          // One statement per row, by primary key: `IN (...)` over a small table is a scan, which waits on (and
          // deadlocks with) the rows another relay holds.
          const statements = [
            ...done.map(() => DELETE_ONE),
            ...failed.map(() => 'UPDATE platform_event_outbox SET attempts = attempts + 1 WHERE event_id = ?'),
            'COMMIT'
          ]
          const params = [...done, ...failed]
          await conn.query(statements.join('; '), params)
          return { claimed: rows.length, done: done.length, failed: failed.length }
        },
        // Not retried on a deadlock: `work` has emitted already. The entries stay for the next round.
        { selfCommitting: true, retries: 0 }
      )
    }
  }
}
export type OutboxStore = ReturnType<typeof createOutboxStore>
