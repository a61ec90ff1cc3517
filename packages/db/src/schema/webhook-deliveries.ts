import { bigint, index, int, mysqlEnum, mysqlTable, smallint, varchar } from 'drizzle-orm/mysql-core'
import { sql } from 'drizzle-orm'
import { instant } from './util/timestamps.js'
import { webhookEndpoints } from './webhook-endpoints.js'

export const WEBHOOK_DELIVERY_STATUSES = ['succeeded', 'failed'] as const
export type WebhookDeliveryStatus = (typeof WEBHOOK_DELIVERY_STATUSES)[number]

/**
 * One row per delivery attempt, the log an endpoint's owner reads. Bounded per endpoint by the api (the oldest rows go).
 * Never the body: it can be rebuilt from the event, and a log is no place for payloads. Only a short excerpt of the
 * receiver's answer.
 */
export const webhookDeliveries = mysqlTable(
  'webhook_deliveries',
  {
    id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
    endpointId: bigint('endpoint_id', { mode: 'number', unsigned: true })
      .notNull()
      .references(() => webhookEndpoints.id, { onDelete: 'cascade' }),
    eventId: varchar('event_id', { length: 128 }).notNull(),
    eventType: varchar('event_type', { length: 64 }).notNull(),
    attempt: smallint('attempt', { unsigned: true }).notNull(),
    status: mysqlEnum('status', WEBHOOK_DELIVERY_STATUSES).notNull(),
    httpStatus: smallint('http_status', { unsigned: true }),
    error: varchar('error', { length: 255 }),
    responseExcerpt: varchar('response_excerpt', { length: 255 }),
    durationMs: int('duration_ms', { unsigned: true }).notNull(),
    createdAt: instant('created_at').notNull().default(sql`CURRENT_TIMESTAMP(3)`)
  },
  (t) => [index('webhook_deliveries_endpoint_idx').on(t.endpointId, t.id)]
)
