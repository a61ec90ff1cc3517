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

/**
 * What a stream key may look like: the characters node-media-server accepts in a stream name (ours are UUIDs).
 * The column compares byte for byte (`utf8mb4_bin`) except for trailing spaces, which that collation pads away on
 * MySQL and MariaDB alike; a key with a space in it is refused before any query, so no two spellings find one stream.
 */
export const STREAM_KEY_PATTERN = '^[A-Za-z0-9_-]{1,64}$'
const STREAM_KEY = new RegExp(STREAM_KEY_PATTERN)

/** True when `text` has the shape of a stream key (it may still be no stream's key). */
export const isStreamKeyShaped = (text: string) => STREAM_KEY.test(text)

/** Looks a stream up by its secret key, byte for byte (the unique index makes this one index read). */
export async function findStreamByKey(db: Database, streamKey: string): Promise<PublishTarget | null> {
  if (!isStreamKeyShaped(streamKey)) return null
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
