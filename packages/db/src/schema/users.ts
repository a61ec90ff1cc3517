import { bigint, mysqlTable, uniqueIndex, varchar } from 'drizzle-orm/mysql-core'
import { timestamps } from './util/timestamps.js'
import { exactText } from './util/exact-text.js'

export const users = mysqlTable(
  'users',
  {
    id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
    /** Normalized by the api (NFKC, lower case, trimmed) and compared byte for byte: `josé@` is not `jose@`. */
    email: exactText('email', 254).notNull(),
    passwordHash: varchar('password_hash', { length: 255 }),
    displayName: varchar('display_name', { length: 100 }).notNull(),
    ...timestamps
  },
  (t) => [uniqueIndex('users_email_uq').on(t.email)]
)
