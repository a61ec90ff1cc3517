import { drizzle, type MySql2Database } from 'drizzle-orm/mysql2'
import mysql from 'mysql2/promise'
import * as schema from './schema/index.js'

export type Schema = typeof schema
/** A drizzle database bound to our schema. */
export type Database = MySql2Database<Schema>
/** The handle a `db.transaction()` callback receives. */
export type Transaction = Parameters<Parameters<Database['transaction']>[0]>[0]

export interface DbClientOptions {
  /** `mysql://user:pass@host:port/database` */
  url: string
  /** Pool size; defaults to 10. */
  connectionLimit?: number
  /**
   * Lets one `query()` carry several statements (one round trip for a whole transaction). Only for callers whose every
   * value travels as a parameter: with it, an injected string could run statements of its own.
   */
  multipleStatements?: boolean
}

/** A pool and the drizzle database over it. `close()` ends the pool. */
export interface DbClient {
  db: Database
  pool: mysql.Pool
  /** Resolves once a connection answers `SELECT 1`; rejects with the driver's error. */
  ping(): Promise<void>
  close(): Promise<void>
}

/**
 * Creates a mysql2 pool from a URL. All dates are UTC and come back as `Date`s;
 * the pool fails fast instead of queueing forever when the server is gone.
 */
export function createDbClient(options: DbClientOptions): DbClient {
  const pool = mysql.createPool({
    uri: options.url,
    connectionLimit: options.connectionLimit ?? 10,
    multipleStatements: options.multipleStatements ?? false,
    timezone: 'Z',
    dateStrings: false,
    supportBigNumbers: true,
    connectTimeout: 5_000,
    enableKeepAlive: true,
    // mysql2's promise API otherwise captures the caller's stack on every call, for its errors' sake: ~10 % of the
    // consumer's CPU (bench:consumer +9 %). A query error's stack then shows the driver's frames; the message, code
    // and the query's SQL (see loggableError) still say which query failed.
    trace: false,
    // A request waiting for a connection is answered (with an error) rather than hanging.
    queueLimit: 1_000
  })
  const db = drizzle(pool, { schema, mode: 'default' })
  let closed = false
  return {
    db,
    pool,
    async ping() {
      await pool.query('SELECT 1')
    },
    async close() {
      if (closed) return
      closed = true
      await pool.end()
    }
  }
}
