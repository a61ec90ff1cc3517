import { sql } from 'drizzle-orm'
import { datetime } from 'drizzle-orm/mysql-core'

/** `created_at` / `updated_at` kept by the database, millisecond precision, UTC. */
export const timestamps = {
  createdAt: datetime('created_at', { mode: 'date', fsp: 3 })
    .notNull()
    .default(sql`CURRENT_TIMESTAMP(3)`),
  updatedAt: datetime('updated_at', { mode: 'date', fsp: 3 })
    .notNull()
    .default(sql`CURRENT_TIMESTAMP(3)`)
    .$onUpdate(() => new Date())
}

/** A nullable point in time with millisecond precision. */
export const instant = (name: string) => datetime(name, { mode: 'date', fsp: 3 })
