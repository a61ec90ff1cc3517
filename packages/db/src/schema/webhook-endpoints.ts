import { bigint, index, int, json, mysqlTable, varchar } from 'drizzle-orm/mysql-core'
import { instant, timestamps } from './util/timestamps.js'
import { users } from './users.js'

/**
 * Where an owner wants to hear of their streams (Standard Webhooks). `eventTypes` NULL means every type. `secret` is
 * kept in the clear because every delivery is signed with it; the previous one still signs until
 * `previousSecretExpiresAt` (a rotation's overlap). `failureStreak` counts the events in a row whose delivery failed
 * for good; past the configured limit the endpoint is disabled (`disabledAt`, `disabledReason`).
 */
export const webhookEndpoints = mysqlTable(
  'webhook_endpoints',
  {
    id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
    userId: bigint('user_id', { mode: 'number', unsigned: true })
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    url: varchar('url', { length: 2048 }).notNull(),
    description: varchar('description', { length: 200 }),
    eventTypes: json('event_types').$type<string[]>(),
    secret: varchar('secret', { length: 100 }).notNull(),
    previousSecret: varchar('previous_secret', { length: 100 }),
    previousSecretExpiresAt: instant('previous_secret_expires_at'),
    failureStreak: int('failure_streak', { unsigned: true }).notNull().default(0),
    lastSuccessAt: instant('last_success_at'),
    lastFailureAt: instant('last_failure_at'),
    disabledAt: instant('disabled_at'),
    disabledReason: varchar('disabled_reason', { length: 255 }),
    // updated_at kept by the database (ON UPDATE, in the hand-written migration 0005).
    ...timestamps
  },
  (t) => [index('webhook_endpoints_user_idx').on(t.userId, t.id)]
)
