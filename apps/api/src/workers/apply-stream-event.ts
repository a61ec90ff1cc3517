import { eq, sql } from 'drizzle-orm'
import { streamEvents, streams, type Database, type Transaction } from '@livestream/db'
import type { StreamEvent } from '@livestream/events'
import type { StreamsService } from '../plugins/app/streams/streams-service.js'

export interface ApplyDeps {
  db: Database
  streams: StreamsService
}

/**
 * What became of an event: `applied`, `duplicate` (its id is already in the ledger: nothing happens),
 * or why it changed nothing (`stale`, `unknown-stream`, `other-node`, `anonymous-viewer`).
 */
export type Outcome = 'applied' | 'duplicate' | 'stale' | 'unknown-stream' | 'other-node' | 'anonymous-viewer'

/**
 * Applies one ingest event through the streams service and records its id in the ledger, in one transaction.
 * Delivery is at least once: a second delivery finds its id in the ledger and changes nothing; an event that
 * would move a stream backwards (late, out of order) is recorded as `stale` and ignored.
 */
export async function applyStreamEvent(event: StreamEvent, deps: ApplyDeps): Promise<Outcome> {
  return deps.db.transaction(async (tx) => {
    // Claim the id first: the unique index makes a concurrent duplicate wait for us, then find it taken.
    const [claim] = await tx.execute(
      sql`INSERT IGNORE INTO ${streamEvents} (event_id, type, stream_id, node_id, session_id, outcome, occurred_at)
          VALUES (${event.id}, ${event.type}, ${event.streamId}, ${event.nodeId}, ${event.sessionId}, 'pending', ${new Date(event.at)})`
    )
    if ((claim as unknown as { affectedRows: number }).affectedRows === 0) return 'duplicate'

    const outcome = await apply(event, deps.streams, tx)
    await tx.update(streamEvents).set({ outcome }).where(eq(streamEvents.eventId, event.id))
    return outcome
  })
}

async function apply(event: StreamEvent, service: StreamsService, tx: Transaction): Promise<Outcome> {
  const [row] = await tx
    .select({ status: streams.status, ingestNodeId: streams.ingestNodeId })
    .from(streams)
    .where(eq(streams.id, event.streamId))
    .for('update')
  if (!row) return 'unknown-stream'
  const at = new Date(event.at)

  switch (event.type) {
    case 'stream.published': {
      if (row.status === 'live' && row.ingestNodeId !== event.nodeId) {
        // The broadcaster reconnected through the load balancer to another node: playback moves with it.
        await service.moveToNode(event.streamId, { ingestNodeId: event.nodeId, playbackBaseUrl: event.playbackBaseUrl }, tx)
        return 'applied'
      }
      const { changed } = await service.transition(
        event.streamId,
        'live',
        { at, ingestNodeId: event.nodeId, playbackBaseUrl: event.playbackBaseUrl, lenient: true },
        tx
      )
      return changed ? 'applied' : 'stale'
    }
    case 'stream.unpublished': {
      // Only the node that holds the stream may end it: after a move, the old node's unpublish is stale news.
      if (row.status === 'live' && row.ingestNodeId !== null && row.ingestNodeId !== event.nodeId) return 'other-node'
      const { changed } = await service.transition(event.streamId, 'ended', { at, reason: event.reason, lenient: true }, tx)
      return changed ? 'applied' : 'stale'
    }
    case 'viewer.joined': {
      if (event.userId === null) return 'anonymous-viewer'
      if (row.status === 'ended') return 'stale'
      await service.join(event.streamId, event.userId, tx)
      return 'applied'
    }
    case 'viewer.left': {
      if (event.userId === null) return 'anonymous-viewer'
      await service.leave(event.streamId, event.userId, tx)
      return 'applied'
    }
  }
}
