import { sql } from 'drizzle-orm'
import { datetime } from 'drizzle-orm/mysql-core'

/**
 * `created_at` / `updated_at` kept by the database, millisecond precision, UTC. `updated_at` moves on every UPDATE that
 * changes the row, whoever writes it: `ON UPDATE CURRENT_TIMESTAMP(3)`, added by the hand-written migration 0003 since
 * drizzle's `datetime` cannot declare it (drizzle's `$onUpdate` only covered writes made through drizzle, so a stream's
 * start and end, in plain SQL, never moved it).
 */
export const timestamps = {
  createdAt: datetime('created_at', { mode: 'date', fsp: 3 })
    .notNull()
    .default(sql`CURRENT_TIMESTAMP(3)`),
  updatedAt: datetime('updated_at', { mode: 'date', fsp: 3 })
    .notNull()
    .default(sql`CURRENT_TIMESTAMP(3)`)
}

/** A nullable point in time with millisecond precision. */
export const instant = (name: string) => datetime(name, { mode: 'date', fsp: 3 })
