import type { DbClient, StreamStatus } from '@livestream/db'
import { sourcesOf } from './lifecycle.js'

export type Pool = DbClient['pool']
export type Connection = Awaited<ReturnType<Pool['getConnection']>>

/** A stream row as the writes need it, read under the row lock. */
export interface LockedStream {
  status: StreamStatus
  user_id: number
  ingest_node_id: string | null
}

const ER_LOCK_DEADLOCK = 1213
/** InnoDB may pick us as a deadlock victim when writers of one stream race: the whole transaction is tried again. */
const DEADLOCK_RETRIES = 3
export const errno = (err: unknown) => (err as { errno?: number }).errno

const q = (list: readonly string[]) => list.map((s) => `'${s}'`).join(', ')
/**
 * Every write a lifecycle move makes, in one place, for the HTTP routes, the reaper and the queue consumer alike.
 * Each guards its own source states (`sourcesOf`), so a move the rules refuse writes nothing even without the lock.
 * Plain SQL through mysql2's prepared statements (cached per connection): the consumer's hot path has no query
 * building, and the routes pay the same.
 */
const SQL = {
  lock: 'SELECT status, user_id, ingest_node_id FROM streams WHERE id = ? FOR UPDATE',
  live: `UPDATE streams SET status = 'live', started_at = ?, ingest_node_id = ?, playback_base_url = ?
         WHERE id = ? AND status IN (${q(sourcesOf('live'))})`,
  move: `UPDATE streams SET ingest_node_id = ?, playback_base_url = ? WHERE id = ? AND status = 'live'`,
  end: `UPDATE streams SET status = 'ended', ended_at = ?, ended_reason = ? WHERE id = ? AND status IN (${q(sourcesOf('ended'))})`,
  closeParticipants: 'UPDATE stream_participants SET left_at = ? WHERE stream_id = ? AND left_at IS NULL',
  // One statement: the stream row is read under a shared lock (INSERT ... SELECT), so joins of one stream run side by
  // side while a concurrent end waits for them, and a join that waited for an end finds the stream ended.
  join: `INSERT INTO stream_participants (stream_id, user_id, role, joined_at)
         SELECT id, ?, IF(user_id = ?, 'host', 'viewer'), ? FROM streams WHERE id = ? AND status <> 'ended'
         ON DUPLICATE KEY UPDATE left_at = NULL`,
  // A join that happened while the stream was live but is applied after its end (redelivered late): the participation
  // is recorded as it was, closed when the stream ended. Someone already in keeps their row.
  lateJoin: `INSERT INTO stream_participants (stream_id, user_id, role, joined_at, left_at)
             SELECT id, ?, IF(user_id = ?, 'host', 'viewer'), ?, ended_at FROM streams
             WHERE id = ? AND status = 'ended' AND ended_at >= ?
             ON DUPLICATE KEY UPDATE stream_participants.id = stream_participants.id`,
  leave: 'UPDATE stream_participants SET left_at = ? WHERE stream_id = ? AND user_id = ? AND left_at IS NULL',
  status: 'SELECT status, ended_at FROM streams WHERE id = ?',
  participation: 'SELECT 1 FROM stream_participants WHERE stream_id = ? AND user_id = ?'
} as const

interface Written {
  affectedRows: number
}

type Runner = Pool | Connection

async function write(run: Runner, sql: string, params: unknown[]): Promise<number> {
  const [res] = await run.execute(sql, params as never[])
  return (res as unknown as Written).affectedRows
}

async function read<T>(run: Runner, sql: string, params: unknown[]): Promise<T | undefined> {
  const [rows] = await run.execute(sql, params as never[])
  return (rows as unknown as T[])[0]
}

export const streamWrites = {
  /** The stream row, locked until the transaction ends; undefined when there is no such stream. */
  lock: (conn: Connection, id: number) => read<LockedStream>(conn, SQL.lock, [id]),
  status: (run: Runner, id: number) => read<{ status: StreamStatus; ended_at: Date | null }>(run, SQL.status, [id]),
  isParticipant: async (run: Runner, streamId: number, userId: number) =>
    (await read(run, SQL.participation, [streamId, userId])) !== undefined,

  /** `pending -> live`: when, on which node, and the playback base that node serves. */
  live: (conn: Connection, id: number, at: Date, nodeId: string | null, playbackBaseUrl: string | null) =>
    write(conn, SQL.live, [at, nodeId, playbackBaseUrl, id]),

  /** A live stream reconnected through another node: playback follows it. */
  moveToNode: (run: Runner, id: number, nodeId: string, playbackBaseUrl: string) => write(run, SQL.move, [nodeId, playbackBaseUrl, id]),

  /** `-> ended`: when and why, and every open participation closes at the same instant. */
  async ended(conn: Connection, id: number, at: Date, reason: string): Promise<number> {
    const n = await write(conn, SQL.end, [at, reason, id])
    if (n > 0) await write(conn, SQL.closeParticipants, [at, id])
    return n
  },

  /** Joins or re-joins (one row per stream and user; the owner is the host); 0 rows: stream missing, ended, or no-op. */
  join: (run: Runner, streamId: number, userId: number, at: Date) => write(run, SQL.join, [userId, userId, at, streamId]),

  /** Records a join made at `at` into a stream that has ended since; 0 rows: the stream ended before `at`, or no-op. */
  lateJoin: (run: Runner, streamId: number, userId: number, at: Date) => write(run, SQL.lateJoin, [userId, userId, at, streamId, at]),

  /** Closes an open participation; 0 rows: not in, or already left. */
  leave: (run: Runner, streamId: number, userId: number, at: Date) => write(run, SQL.leave, [at, streamId, userId])
}

/** Runs `work` in a transaction on one pooled connection; a deadlock victim is tried again from the start. */
export async function inTransaction<T>(pool: Pool, work: (conn: Connection) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const conn = await pool.getConnection()
    try {
      await conn.beginTransaction()
      const result = await work(conn)
      await conn.commit()
      return result
    } catch (err) {
      await conn.rollback().catch(() => {})
      if (errno(err) !== ER_LOCK_DEADLOCK || attempt > DEADLOCK_RETRIES) throw err
    } finally {
      conn.release()
    }
  }
}
