import type { Pool, PoolConnection } from 'mysql2/promise'

/**
 * The one classifier of database errors for both apps. drizzle wraps the driver's error in `cause`, and our own code may
 * wrap it again, so codes are looked for down the chain.
 */
function* chain(err: unknown): Generator<{ code?: unknown; errno?: unknown; message?: unknown }> {
  let e: unknown = err
  for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    yield e as { code?: unknown; errno?: unknown }
    e = (e as { cause?: unknown }).cause
  }
}

/** The MySQL error code (`ER_...`) of `err` or of one of its causes. */
export function mysqlErrorCode(err: unknown): string | undefined {
  for (const e of chain(err)) if (typeof e.code === 'string' && e.code.startsWith('ER_')) return e.code
  return undefined
}

/** A unique index refused the row. */
export const isDuplicateEntry = (err: unknown) => mysqlErrorCode(err) === 'ER_DUP_ENTRY'

/** A foreign key names a row that does not exist (or no longer does): for us, a user deleted under a valid token. */
export const isMissingReference = (err: unknown) => {
  const code = mysqlErrorCode(err)
  return code === 'ER_NO_REFERENCED_ROW_2' || code === 'ER_NO_REFERENCED_ROW'
}

/** InnoDB chose this transaction as a deadlock victim, or it waited too long for a lock: trying again is the remedy. */
export const isRetryableConflict = (err: unknown) => {
  const code = mysqlErrorCode(err)
  return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT'
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_LOCK_DEADLOCK',
  'ER_QUERY_INTERRUPTED'
])
// mysql2 raises its pool's own refusals without a code or errno (lib/base/pool.js, 3.x): these two messages are the
// only way to know them, and they are matched whole, never as part of a query's error.
const POOL_REFUSALS = new Set(['Queue limit reached.', 'Pool is closed.'])

/** True when the database (or the network to it) is down or busy: "try again later", not "this request is wrong". */
export function isUnavailable(err: unknown): boolean {
  for (const e of chain(err)) {
    if (typeof e.code === 'string' && UNAVAILABLE_CODES.has(e.code)) return true
    if (e.code === undefined && e.errno === undefined && typeof e.message === 'string' && POOL_REFUSALS.has(e.message)) return true
  }
  return false
}

export interface TransactionOptions {
  /** How many times a deadlock victim or lock wait timeout is tried again (default 3). */
  retries?: number
  /**
   * `work` begins and commits the transaction within its own statements (one multi-statement round trip); the helper
   * only rolls back what a failure left open, and retries.
   */
  selfCommitting?: boolean
}

/**
 * Runs `work` in a transaction on one pooled connection: committed when it resolves, rolled back when it throws. A
 * deadlock victim or a lock wait timeout is tried again from the start (InnoDB's own advice); every other error is
 * the caller's. A connection whose rollback fails is destroyed rather than handed back with a transaction open.
 */
export async function inTransaction<T>(pool: Pool, work: (conn: PoolConnection) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
  const retries = opts.retries ?? 3
  for (let attempt = 0; ; attempt++) {
    const conn = await pool.getConnection()
    let healthy = true
    try {
      if (!opts.selfCommitting) await conn.query('START TRANSACTION')
      const result = await work(conn)
      if (!opts.selfCommitting) await conn.query('COMMIT')
      return result
    } catch (err) {
      await conn.query('ROLLBACK').catch(() => (healthy = false))
      if (!isRetryableConflict(err) || attempt >= retries) throw err
    } finally {
      if (healthy) conn.release()
      else conn.destroy()
    }
  }
}
