import { customType } from 'drizzle-orm/mysql-core'

/**
 * A `varchar` compared byte for byte (`utf8mb4_bin`), for values that are credentials or identifiers: stream keys,
 * playback ids, normalized emails. The database's default collation (`utf8mb4_unicode_ci`) ignores case and accents,
 * so `ABC` would find `abc` and `josé` would find `jose`.
 */
export const exactText = (name: string, length: number) =>
  customType<{ data: string; driverData: string; notNull: false; default: false }>({
    dataType: () => `varchar(${length}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`
  })(name)
