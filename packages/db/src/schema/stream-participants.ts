import { bigint, index, mysqlEnum, mysqlTable, uniqueIndex } from 'drizzle-orm/mysql-core'
import { sql } from 'drizzle-orm'
import { instant } from './util/timestamps.js'
import { streams } from './streams.js'
import { users } from './users.js'

export const PARTICIPANT_ROLES = ['host', 'viewer'] as const
export type ParticipantRole = (typeof PARTICIPANT_ROLES)[number]

export const streamParticipants = mysqlTable(
  'stream_participants',
  {
    id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
    streamId: bigint('stream_id', { mode: 'number', unsigned: true })
      .notNull()
      .references(() => streams.id, { onDelete: 'cascade' }),
    userId: bigint('user_id', { mode: 'number', unsigned: true })
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    role: mysqlEnum('role', PARTICIPANT_ROLES).notNull().default('viewer'),
    joinedAt: instant('joined_at').notNull().default(sql`CURRENT_TIMESTAMP(3)`),
    leftAt: instant('left_at')
  },
  (t) => [
    uniqueIndex('stream_participants_stream_user_uq').on(t.streamId, t.userId),
    index('stream_participants_user_idx').on(t.userId)
  ]
)
