import { bigint, int, mysqlTable, primaryKey, varchar } from 'drizzle-orm/mysql-core'
import { instant } from './util/timestamps.js'
import { streams } from './streams.js'

/**
 * Each ingest node's latest viewer count of each stream it serves. `streams.viewer_count` is the sum of the reports
 * received recently enough (the api's `VIEWER_REPORT_TTL_MS`); `reportedAt` is the node's clock and orders one node's
 * reports, `receivedAt` the database's and decides freshness.
 */
export const streamViewerReports = mysqlTable(
  'stream_viewer_reports',
  {
    streamId: bigint('stream_id', { mode: 'number', unsigned: true })
      .notNull()
      .references(() => streams.id, { onDelete: 'cascade' }),
    nodeId: varchar('node_id', { length: 128 }).notNull(),
    viewers: int('viewers', { unsigned: true }).notNull(),
    reportedAt: instant('reported_at').notNull(),
    receivedAt: instant('received_at').notNull()
  },
  (t) => [primaryKey({ columns: [t.streamId, t.nodeId] })]
)
