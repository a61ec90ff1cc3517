import { eq, inArray } from 'drizzle-orm'
import type { Database } from '../client.js'
import { streams, type StreamStatus } from '../schema/streams.js'

/** What ingest needs to decide on a publish: never the key itself. */
export interface PublishTarget {
  id: number
  playbackId: string
  status: StreamStatus
  userId: number
}

/** Looks a stream up by its secret key (the unique index makes this one index read). */
export async function findStreamByKey(db: Database, streamKey: string): Promise<PublishTarget | null> {
  const rows = await db
    .select({ id: streams.id, playbackId: streams.playbackId, status: streams.status, userId: streams.userId })
    .from(streams)
    .where(eq(streams.streamKey, streamKey))
    .limit(1)
  return rows[0] ?? null
}

/** Current status of a set of streams, for ingest to notice keys that ended or rotated under a live publish. */
export async function findStreamsByIds(
  db: Database,
  ids: number[]
): Promise<Array<{ id: number; status: StreamStatus; streamKey: string }>> {
  if (ids.length === 0) return []
  return db
    .select({ id: streams.id, status: streams.status, streamKey: streams.streamKey })
    .from(streams)
    .where(inArray(streams.id, ids))
}
