import { bigint, index, int, mysqlEnum, mysqlTable, uniqueIndex, varchar } from 'drizzle-orm/mysql-core'
import { instant, timestamps } from './util/timestamps.js'
import { exactText } from './util/exact-text.js'
import { users } from './users.js'

export const STREAM_STATUSES = ['pending', 'live', 'ended'] as const
export type StreamStatus = (typeof STREAM_STATUSES)[number]
/** A live stream's publisher: on, or gone and awaited within the reconnect window. NULL when not live. */
export const STREAM_CONNECTIONS = ['connected', 'reconnecting'] as const
export type StreamConnection = (typeof STREAM_CONNECTIONS)[number]

export const streams = mysqlTable(
  'streams',
  {
    id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
    /** Public, human-friendly reference (e.g. `LS-7Q2K9X4M`). */
    refNo: varchar('ref_no', { length: 32 }).notNull(),
    title: varchar('title', { length: 200 }).notNull(),
    /** Secret: the broadcaster's credential. Only the owner ever sees it. Compared byte for byte. */
    streamKey: exactText('stream_key', 64).notNull(),
    /** Public: names the HLS/DASH folders. Unrelated to the key. Compared byte for byte (base64url is case-sensitive). */
    playbackId: exactText('playback_id', 64).notNull(),
    userId: bigint('user_id', { mode: 'number', unsigned: true })
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    status: mysqlEnum('status', STREAM_STATUSES).notNull().default('pending'),
    ingestNodeId: varchar('ingest_node_id', { length: 128 }),
    /** Playback base of the ingest node holding the stream, set on publish. */
    playbackBaseUrl: varchar('playback_base_url', { length: 512 }),
    endedReason: varchar('ended_reason', { length: 64 }),
    connection: mysqlEnum('connection', STREAM_CONNECTIONS),
    /** When the node saw the last connection change: older reports are stale. */
    connectionAt: instant('connection_at'),
    /** Players watching now, summed over the fresh reports of every node. */
    viewerCount: int('viewer_count', { unsigned: true }).notNull().default(0),
    /** The most `viewerCount` has been. */
    peakViewerCount: int('peak_viewer_count', { unsigned: true }).notNull().default(0),
    startedAt: instant('started_at'),
    endedAt: instant('ended_at'),
    ...timestamps
  },
  (t) => [
    uniqueIndex('streams_ref_no_uq').on(t.refNo),
    uniqueIndex('streams_stream_key_uq').on(t.streamKey),
    uniqueIndex('streams_playback_id_uq').on(t.playbackId),
    index('streams_user_id_idx').on(t.userId, t.id),
    index('streams_status_idx').on(t.status, t.id),
    index('streams_node_status_idx').on(t.ingestNodeId, t.status)
  ]
)
