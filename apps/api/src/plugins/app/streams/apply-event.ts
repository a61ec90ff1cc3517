import type { StreamEvent } from '@livestream/events'
import { canTransition } from './lifecycle.js'
import { errno, inTransaction, streamWrites as w, type Connection, type Pool } from './stream-writes.js'

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
const RECORD = `INSERT INTO stream_events (event_id, type, stream_id, node_id, session_id, outcome, occurred_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)`

/** Thrown inside the transaction so it rolls back whatever the event did: its id was already in the ledger. */
class Duplicate extends Error {}

/**
 * Applies one ingest event with the lifecycle's own writes (`stream-writes.ts`) and records its id in the ledger, in
 * one transaction. Delivery is at least once: the ledger's unique event id makes a second delivery roll back whatever
 * it did and answer `duplicate` (a concurrent one waits on the index, then finds it taken); an event that would move a
 * stream backwards (late, out of order) is `stale`. The ledger row goes last, so the stream row is locked first by
 * every writer (no lock-order deadlocks with the routes).
 */
export async function applyEvent(pool: Pool, event: StreamEvent): Promise<Outcome> {
  try {
    return await inTransaction(pool, async (conn) => {
      const outcome = await apply(conn, event)
      try {
        await conn.execute(RECORD, [event.id, event.type, event.streamId, event.nodeId, event.sessionId, outcome, new Date(event.at)])
      } catch (err) {
        if (errno(err) === ER_DUP_ENTRY) throw new Duplicate()
        throw err
      }
      return outcome
    })
  } catch (err) {
    if (err instanceof Duplicate) return 'duplicate'
    throw err
  }
}

async function apply(conn: Connection, event: StreamEvent): Promise<Outcome> {
  const at = new Date(event.at)
  const id = event.streamId
  switch (event.type) {
    case 'stream.published': {
      const row = await w.lock(conn, id)
      if (!row) return 'unknown-stream'
      if (row.status === 'live' && row.ingest_node_id !== event.nodeId) {
        // The broadcaster reconnected through the load balancer to another node: playback moves with it.
        await w.moveToNode(conn, id, event.nodeId, event.playbackBaseUrl)
        return 'applied'
      }
      if (!canTransition(row.status, 'live')) return 'stale'
      await w.live(conn, id, at, event.nodeId, event.playbackBaseUrl)
      return 'applied'
    }
    case 'stream.unpublished': {
      const row = await w.lock(conn, id)
      if (!row) return 'unknown-stream'
      // Only the node that holds the stream may end it: after a move, the old node's unpublish is stale news.
      if (row.status === 'live' && row.ingest_node_id !== null && row.ingest_node_id !== event.nodeId) return 'other-node'
      if (!canTransition(row.status, 'ended')) return 'stale'
      await w.ended(conn, id, at, event.reason)
      return 'applied'
    }
    case 'viewer.joined': {
      if (event.userId === null) return 'anonymous-viewer'
      if ((await w.join(conn, id, event.userId, at)) > 0) return 'applied'
      // Nothing written: the stream is gone or ended, or the viewer was already in (a no-op re-join).
      const row = await w.status(conn, id)
      if (!row) return 'unknown-stream'
      if (row.status !== 'ended') return 'applied'
      // Ended: a join that happened before the end (redelivered after it, say after a consumer crash) still counts.
      if (row.ended_at && at.getTime() <= row.ended_at.getTime()) {
        await w.lateJoin(conn, id, event.userId, at)
        return 'applied'
      }
      return 'stale'
    }
    case 'viewer.left': {
      if (event.userId === null) return 'anonymous-viewer'
      if ((await w.leave(conn, id, event.userId, at)) > 0) return 'applied'
      if (await w.isParticipant(conn, id, event.userId)) return 'stale' // already left
      if (!(await w.status(conn, id))) return 'unknown-stream'
      throw new ViewerNotJoinedError(id, event.userId)
    }
  }
}
