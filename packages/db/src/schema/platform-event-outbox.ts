import { bigint, index, int, mysqlTable, varchar } from 'drizzle-orm/mysql-core'
import { sql } from 'drizzle-orm'
import { exactText } from './util/exact-text.js'
import { instant } from './util/timestamps.js'

/**
 * The transactional outbox of platform events: one row per announced change of a stream, written in the same
 * transaction as the change and deleted once the event was handed to every sink. A row still here a few seconds
 * later is re-emitted by the api's relay under the same id. The event's data is rebuilt from the stream's current
 * row; the outbox keeps only what the stream row cannot say.
 */
export const platformEventOutbox = mysqlTable(
  'platform_event_outbox',
  {
    /** The platform event's id (`evt_...`): the `webhook-id` every delivery of it carries. */
    eventId: exactText('event_id', 160).primaryKey(),
    /** A platform event type (`stream.ended`, `participant.joined`, ...). */
    type: varchar('type', { length: 64 }).notNull(),
    streamId: bigint('stream_id', { mode: 'number', unsigned: true }).notNull(),
    /** `participant.*`: whose participation. */
    participantUserId: bigint('participant_user_id', { mode: 'number', unsigned: true }),
    /** `stream.ended`: why. */
    reason: varchar('reason', { length: 64 }),
    occurredAt: instant('occurred_at').notNull(),
    /** Emissions by the relay that failed. */
    attempts: int('attempts', { unsigned: true }).notNull().default(0),
    createdAt: instant('created_at').notNull().default(sql`CURRENT_TIMESTAMP(3)`)
  },
  (t) => [index('platform_event_outbox_created_idx').on(t.createdAt)]
)
