import { bigint, index, mysqlTable, uniqueIndex, varchar } from 'drizzle-orm/mysql-core'
import { sql } from 'drizzle-orm'
import { instant } from './util/timestamps.js'

/**
 * The idempotency ledger and audit trail: one row per ingest event applied
 * (or deliberately ignored), keyed by the event's unique id.
 */
export const streamEvents = mysqlTable(
  'stream_events',
  {
    id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
    eventId: varchar('event_id', { length: 128 }).notNull(),
    type: varchar('type', { length: 64 }).notNull(),
    streamId: bigint('stream_id', { mode: 'number', unsigned: true }),
    nodeId: varchar('node_id', { length: 128 }).notNull(),
    sessionId: varchar('session_id', { length: 128 }),
    /** `applied`, or why the event changed nothing (`stale`, `unknown-stream`, ...). */
    outcome: varchar('outcome', { length: 64 }).notNull(),
    occurredAt: instant('occurred_at').notNull(),
    recordedAt: instant('recorded_at').notNull().default(sql`CURRENT_TIMESTAMP(3)`)
  },
  (t) => [
    uniqueIndex('stream_events_event_id_uq').on(t.eventId),
    index('stream_events_stream_idx').on(t.streamId, t.occurredAt),
    // Retention of the viewer reports (migration 0008).
    index('stream_events_type_recorded_idx').on(t.type, t.recordedAt)
  ]
)
