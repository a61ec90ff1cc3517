import { and, eq, isNotNull } from 'drizzle-orm'
import type { Redis } from 'ioredis'
import { streams, type Database } from '@livestream/db'
import { heartbeatKey, parseHeartbeats, type NodeHeartbeat } from '@livestream/events'
import type { StreamsService } from '../plugins/app/streams/streams-service.js'

export interface ReapDeps {
  db: Database
  streams: StreamsService
  redis: Redis
  queuePrefix: string
  /** A node silent for longer than this has lost its streams. */
  nodeTimeoutMs: number
}

export interface Reaped {
  streamId: number
  nodeId: string
  reason: 'node-lost' | 'not-on-node'
}

/**
 * A heartbeat must be this much newer than the moment a stream went live before the stream's absence from it counts:
 * the published event and the heartbeat travel separately and may cross.
 */
const ABSENCE_GRACE_MS = 5_000

/**
 * Heartbeats older than this are deleted: their node is long gone (a missing heartbeat and a stale one mean the same
 * to the reaper and to ingest's media sweep), and node ids are often one-off (pod names), so the hash would only grow.
 */
export const HEARTBEAT_FORGET_MS = 24 * 3600_000

/**
 * Ends live streams whose ingest node is gone: silent for longer than `nodeTimeoutMs` (`node-lost`), or alive but no
 * longer holding the stream, as after a restart (`not-on-node`). Streams made live by hand (`POST /start`, no node)
 * are left alone. Goes through the streams service, so an already-ended stream is not touched twice and several api
 * instances may reap at once.
 */
export async function reapLostStreams(deps: ReapDeps, now = Date.now()): Promise<Reaped[]> {
  const beats = await readHeartbeats(deps, now)
  const live = await deps.db
    .select({ id: streams.id, nodeId: streams.ingestNodeId, startedAt: streams.startedAt, updatedAt: streams.updatedAt })
    .from(streams)
    .where(and(eq(streams.status, 'live'), isNotNull(streams.ingestNodeId)))
  if (live.length === 0) return []

  const reaped: Reaped[] = []
  for (const s of live) {
    const nodeId = s.nodeId as string
    const liveSince = (s.startedAt ?? s.updatedAt).getTime()
    const hb = beats.get(nodeId)
    let reason: Reaped['reason'] | null = null
    if (!hb) {
      // Never heard from (or forgotten): measure the silence from when the stream went live.
      if (now - liveSince > deps.nodeTimeoutMs) reason = 'node-lost'
    } else if (now - hb.at > deps.nodeTimeoutMs) {
      reason = 'node-lost'
    } else if (!hb.streamIds.includes(s.id) && hb.at - liveSince > ABSENCE_GRACE_MS) {
      reason = 'not-on-node'
    }
    if (!reason) continue
    const { changed } = await deps.streams.transition(s.id, 'ended', { reason, lenient: true })
    if (changed) reaped.push({ streamId: s.id, nodeId, reason })
  }
  return reaped
}

/** The latest heartbeat of each node, by node id; the long-forgotten ones are deleted on the way. */
async function readHeartbeats(deps: ReapDeps, now: number): Promise<Map<string, NodeHeartbeat>> {
  const key = heartbeatKey(deps.queuePrefix)
  const beats = parseHeartbeats(await deps.redis.hgetall(key))
  const forgotten = [...beats].filter(([, hb]) => now - hb.at > HEARTBEAT_FORGET_MS).map(([nodeId]) => nodeId)
  for (const nodeId of forgotten) beats.delete(nodeId)
  // HDEL by field: a node that beat again in between is deleted too, and is back at its next beat (seconds).
  if (forgotten.length) await deps.redis.hdel(key, ...forgotten)
  return beats
}
