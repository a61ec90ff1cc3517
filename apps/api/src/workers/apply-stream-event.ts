import type { DbClient } from '@livestream/db'
import type { StreamEvent } from '@livestream/events'
import { canTransition, sourcesOf } from '../plugins/app/streams/lifecycle.js'

type Pool = DbClient['pool']
type Connection = Awaited<ReturnType<Pool['getConnection']>>
interface Written {
  affectedRows: number
}
interface StreamLock {
  status: 'pending' | 'live' | 'ended'
  ingest_node_id: string | null
}

export interface ApplyDeps {
  pool: Pool
}

/**
 * What became of an event: `applied`, `duplicate` (its id is already in the ledger: nothing happens),
 * or why it changed nothing (`stale`, `unknown-stream`, `other-node`, `anonymous-viewer`).
 */
export type Outcome = 'applied' | 'duplicate' | 'stale' | 'unknown-stream' | 'other-node' | 'anonymous-viewer'

/** A viewer left before their join was applied (deliveries race): retried, so the join lands first. */
export class ViewerNotJoinedError extends Error {
  constructor(streamId: number, userId: number) {
    super(`viewer ${userId} left stream ${streamId} before their join was applied`)
    this.name = 'ViewerNotJoinedError'
  }
}

const ER_DUP_ENTRY = 1062
const ER_LOCK_DEADLOCK = 1213
const errno = (err: unknown) => (err as { errno?: number }).errno
/** InnoDB may pick us as a deadlock victim when deliveries of one stream race: the whole transaction is tried again. */
const DEADLOCK_RETRIES = 3

const q = (list: readonly string[]) => list.map((s) => `'${s}'`).join(', ')
const SQL = {
  lock: 'SELECT status, ingest_node_id FROM streams WHERE id = ? FOR UPDATE',
  live: `UPDATE streams SET status = 'live', started_at = ?, ingest_node_id = ?, playback_base_url = ?
         WHERE id = ? AND status IN (${q(sourcesOf('live'))})`,
  move: `UPDATE streams SET ingest_node_id = ?, playback_base_url = ? WHERE id = ? AND status = 'live'`,
  end: `UPDATE streams SET status = 'ended', ended_at = ?, ended_reason = ? WHERE id = ? AND status IN (${q(sourcesOf('ended'))})`,
  closeParticipants: 'UPDATE stream_participants SET left_at = ? WHERE stream_id = ? AND left_at IS NULL',
  // One statement: the stream row is read under a shared lock (INSERT ... SELECT), so a concurrent end waits for us.
  join: `INSERT INTO stream_participants (stream_id, user_id, role)
         SELECT id, ?, IF(user_id = ?, 'host', 'viewer') FROM streams WHERE id = ? AND status <> 'ended'
         ON DUPLICATE KEY UPDATE left_at = NULL`,
  leave: 'UPDATE stream_participants SET left_at = ? WHERE stream_id = ? AND user_id = ? AND left_at IS NULL',
  status: 'SELECT status FROM streams WHERE id = ?',
  participation: 'SELECT 1 FROM stream_participants WHERE stream_id = ? AND user_id = ?',
  record: `INSERT INTO stream_events (event_id, type, stream_id, node_id, session_id, outcome, occurred_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)`
} as const

/**
 * Applies one ingest event and records its id in the ledger, in one transaction. Delivery is at least once: the ledger's
 * unique event id makes a second delivery roll back whatever it did and answer `duplicate` (a concurrent one waits on
 * the index, then finds it taken); an event that would move a stream backwards (late, out of order) is `stale`.
 *
 * This is the hot path of the consumer, so it speaks SQL directly through the pool: prepared statements cached per
 * connection, no query building, two or three round trips besides BEGIN and COMMIT. The moves it makes follow the
 * same lifecycle rules (`lifecycle.ts`) as the streams service; a test holds the two to the same results.
 */
export async function applyStreamEvent(event: StreamEvent, deps: ApplyDeps): Promise<Outcome> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await applyOnce(event, deps)
    } catch (err) {
      if (errno(err) !== ER_LOCK_DEADLOCK || attempt > DEADLOCK_RETRIES) throw err
    }
  }
}

async function applyOnce(event: StreamEvent, deps: ApplyDeps): Promise<Outcome> {
  const conn = await deps.pool.getConnection()
  try {
    await conn.beginTransaction()
    const outcome = await apply(conn, event)
    try {
      await conn.execute(SQL.record, [event.id, event.type, event.streamId, event.nodeId, event.sessionId, outcome, new Date(event.at)])
    } catch (err) {
      if (errno(err) !== ER_DUP_ENTRY) throw err
      await conn.rollback()
      return 'duplicate'
    }
    await conn.commit()
    return outcome
  } catch (err) {
    await conn.rollback().catch(() => {})
    throw err
  } finally {
    conn.release()
  }
}

async function write(conn: Connection, sql: string, params: unknown[]): Promise<number> {
  const [res] = await conn.execute(sql, params as never[])
  return (res as unknown as Written).affectedRows
}

async function read<T>(conn: Connection, sql: string, params: unknown[]): Promise<T | undefined> {
  const [rows] = await conn.execute(sql, params as never[])
  return (rows as unknown as T[])[0]
}

async function apply(conn: Connection, event: StreamEvent): Promise<Outcome> {
  const at = new Date(event.at)
  const id = event.streamId
  switch (event.type) {
    case 'stream.published': {
      const row = await read<StreamLock>(conn, SQL.lock, [id])
      if (!row) return 'unknown-stream'
      if (row.status === 'live' && row.ingest_node_id !== event.nodeId) {
        // The broadcaster reconnected through the load balancer to another node: playback moves with it.
        await write(conn, SQL.move, [event.nodeId, event.playbackBaseUrl, id])
        return 'applied'
      }
      if (!canTransition(row.status, 'live')) return 'stale'
      await write(conn, SQL.live, [at, event.nodeId, event.playbackBaseUrl, id])
      return 'applied'
    }
    case 'stream.unpublished': {
      const row = await read<StreamLock>(conn, SQL.lock, [id])
      if (!row) return 'unknown-stream'
      // Only the node that holds the stream may end it: after a move, the old node's unpublish is stale news.
      if (row.status === 'live' && row.ingest_node_id !== null && row.ingest_node_id !== event.nodeId) return 'other-node'
      if (!canTransition(row.status, 'ended')) return 'stale'
      await write(conn, SQL.end, [at, event.reason, id])
      await write(conn, SQL.closeParticipants, [at, id])
      return 'applied'
    }
    case 'viewer.joined': {
      if (event.userId === null) return 'anonymous-viewer'
      if ((await write(conn, SQL.join, [event.userId, event.userId, id])) > 0) return 'applied'
      // Nothing written: the stream is gone or ended, or the viewer was already in (a no-op re-join).
      const row = await read<{ status: StreamLock['status'] }>(conn, SQL.status, [id])
      if (!row) return 'unknown-stream'
      return row.status === 'ended' ? 'stale' : 'applied'
    }
    case 'viewer.left': {
      if (event.userId === null) return 'anonymous-viewer'
      if ((await write(conn, SQL.leave, [at, id, event.userId])) > 0) return 'applied'
      if (await read(conn, SQL.participation, [id, event.userId])) return 'stale' // already left
      if (!(await read(conn, SQL.status, [id]))) return 'unknown-stream'
      throw new ViewerNotJoinedError(id, event.userId)
    }
  }
}
