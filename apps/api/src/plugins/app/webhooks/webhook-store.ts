import { inTransaction, type DbClient } from '@livestream/db'

type Pool = DbClient['pool']

export interface EndpointRow {
  id: number
  userId: number
  url: string
  description: string | null
  /** NULL: every type. */
  eventTypes: string[] | null
  secret: string
  previousSecret: string | null
  previousSecretExpiresAt: Date | null
  failureStreak: number
  lastSuccessAt: Date | null
  lastFailureAt: Date | null
  disabledAt: Date | null
  disabledReason: string | null
  createdAt: Date
  updatedAt: Date
}

export interface DeliveryRow {
  id: number
  endpointId: number
  eventId: string
  eventType: string
  attempt: number
  status: 'succeeded' | 'failed'
  httpStatus: number | null
  error: string | null
  responseExcerpt: string | null
  durationMs: number
  createdAt: Date
}

/** What an attempt means for its endpoint: delivered; failed with retries left; failed for good (the event is lost). */
export type AttemptOutcome = 'delivered' | 'will-retry' | 'exhausted' | 'ping'

export interface RecordOptions {
  disableAfter: number
  keepRows: number
  disabledReason: string
  /**
   * Whether the endpoint's own record changes (its failure streak resets, its last success or failure moves by a
   * second or more). An exhausted event always does. When it does not, the attempt writes its log row alone.
   */
  touchEndpoint: boolean
}

export interface AttemptRecord {
  endpointId: number
  eventId: string
  eventType: string
  attempt: number
  ok: boolean
  httpStatus: number | null
  error: string | null
  responseExcerpt: string | null
  durationMs: number
  outcome: AttemptOutcome
  at: Date
}

const ENDPOINT = `e.id, e.user_id AS userId, e.url, e.description, e.event_types AS eventTypes, e.secret, e.previous_secret AS previousSecret,
  e.previous_secret_expires_at AS previousSecretExpiresAt, e.failure_streak AS failureStreak, e.last_success_at AS lastSuccessAt,
  e.last_failure_at AS lastFailureAt, e.disabled_at AS disabledAt, e.disabled_reason AS disabledReason, e.created_at AS createdAt,
  e.updated_at AS updatedAt`
const DELIVERY = `d.id, d.endpoint_id AS endpointId, d.event_id AS eventId, d.event_type AS eventType, d.attempt, d.status,
  d.http_status AS httpStatus, d.error, d.response_excerpt AS responseExcerpt, d.duration_ms AS durationMs, d.created_at AS createdAt`

// The log row of one attempt, and the endpoint's own record of how it fares.
const INSERT_ATTEMPT = `INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, attempt, status, http_status, error, response_excerpt, duration_ms, created_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
// A ping tells its owner how the endpoint answers; it does not count for or against it.
const ENDPOINT_AFTER: Record<AttemptOutcome, string | null> = {
  delivered: 'UPDATE webhook_endpoints SET failure_streak = 0, last_success_at = ? WHERE id = ?',
  'will-retry': 'UPDATE webhook_endpoints SET last_failure_at = ? WHERE id = ?',
  exhausted: 'UPDATE webhook_endpoints SET failure_streak = failure_streak + 1, last_failure_at = ? WHERE id = ?',
  ping: null
}
// Run after an exhausted event: the endpoint is disabled once that many events in a row failed for good.
const DISABLE = `UPDATE webhook_endpoints SET disabled_at = ?, disabled_reason = ? WHERE id = ? AND disabled_at IS NULL AND failure_streak >= ?`
// The cut of a log: the newest kept row's id found by a plain (non-locking) read, then the older rows deleted by range.
// One DELETE with that read as a subquery would lock the newest rows and the gap above them, where concurrent
// attempts insert: it deadlocked with them under load.
const OLDEST_KEPT = 'SELECT id FROM webhook_deliveries WHERE endpoint_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?'
const PRUNE = 'DELETE FROM webhook_deliveries WHERE endpoint_id = ? AND id < ?'

/** MariaDB's JSON is LONGTEXT: it comes back as text; MySQL's comes back parsed. */
function eventTypesOf(value: unknown): string[] | null {
  if (value === null || value === undefined) return null
  const parsed: unknown = typeof value === 'string' ? JSON.parse(value) : value
  return Array.isArray(parsed) ? parsed.map(String) : null
}
const endpointOf = (row: EndpointRow): EndpointRow => ({ ...row, eventTypes: eventTypesOf(row.eventTypes) })

async function rows<T>(pool: Pool, sql: string, params: unknown[]): Promise<T[]> {
  const [result] = await pool.query(sql, params)
  return result as T[]
}
async function affected(pool: Pool, sql: string, params: unknown[]): Promise<number> {
  const [result] = await pool.query(sql, params)
  return (result as { affectedRows: number }).affectedRows
}

/**
 * Every statement of the webhooks domain: plain SQL through mysql2 with every value a parameter (as the streams
 * domain's `stream-store.ts`). Each read and write of someone's endpoint names its owner in the WHERE clause, so
 * another user's endpoint is found exactly like one that does not exist.
 */
export function createWebhookStore(pool: Pool) {
  return {
    /** Inserts under the owner's row lock, so two creates at once cannot both pass the cap; null when at the cap. */
    async insert(
      v: { userId: number; url: string; description: string | null; eventTypes: string[] | null; secret: string },
      maxPerUser: number
    ): Promise<number | null> {
      return inTransaction(pool, async (conn) => {
        await conn.query('SELECT id FROM users WHERE id = ? FOR UPDATE', [v.userId])
        const [[count]] = (await conn.query('SELECT COUNT(*) AS n FROM webhook_endpoints WHERE user_id = ?', [v.userId])) as unknown as [[{ n: number }]]
        if (Number(count.n) >= maxPerUser) return null
        const [res] = await conn.query(
          'INSERT INTO webhook_endpoints (user_id, url, description, event_types, secret) VALUES (?, ?, ?, ?, ?)',
          [v.userId, v.url, v.description, v.eventTypes === null ? null : JSON.stringify(v.eventTypes), v.secret]
        )
        return (res as { insertId: number }).insertId
      })
    },

    async list(userId: number): Promise<EndpointRow[]> {
      return (await rows<EndpointRow>(pool, `SELECT ${ENDPOINT} FROM webhook_endpoints e WHERE e.user_id = ? ORDER BY e.id`, [userId])).map(endpointOf)
    },

    async byId(id: number, userId: number): Promise<EndpointRow | undefined> {
      const [row] = await rows<EndpointRow>(pool, `SELECT ${ENDPOINT} FROM webhook_endpoints e WHERE e.id = ? AND e.user_id = ?`, [id, userId])
      return row && endpointOf(row)
    },

    /** For a delivery: the endpoint whoever owns it (the job was made for its owner). */
    async forDelivery(id: number): Promise<EndpointRow | undefined> {
      const [row] = await rows<EndpointRow>(pool, `SELECT ${ENDPOINT} FROM webhook_endpoints e WHERE e.id = ?`, [id])
      return row && endpointOf(row)
    },

    /** The owner's endpoints that take deliveries (not disabled): whom an event goes to. */
    async enabledOf(userId: number): Promise<Array<Pick<EndpointRow, 'id' | 'eventTypes'>>> {
      const list = await rows<Pick<EndpointRow, 'id' | 'eventTypes'>>(
        pool,
        'SELECT id, event_types AS eventTypes FROM webhook_endpoints WHERE user_id = ? AND disabled_at IS NULL',
        [userId]
      )
      return list.map((r) => ({ id: r.id, eventTypes: eventTypesOf(r.eventTypes) }))
    },

    remove: (id: number, userId: number) => affected(pool, 'DELETE FROM webhook_endpoints WHERE id = ? AND user_id = ?', [id, userId]),

    /** The current secret becomes the previous one (valid until `previousUntil`); assignments run left to right. */
    rotate: (id: number, userId: number, secret: string, previousUntil: Date) =>
      affected(
        pool,
        'UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires_at = ?, secret = ? WHERE id = ? AND user_id = ?',
        [previousUntil, secret, id, userId]
      ),

    /**
     * Changes what is given of url, description and filter (`undefined`: kept; at least one given); the number of rows
     * found (mysql2 counts found rows, so an update to the same values is 1).
     */
    update(id: number, userId: number, v: { url?: string | undefined; description?: string | null | undefined; eventTypes?: string[] | null | undefined }) {
      const set: string[] = []
      const params: unknown[] = []
      const put = (column: string, value: unknown) => {
        set.push(`${column} = ?`)
        params.push(value)
      }
      if (v.url !== undefined) put('url', v.url)
      if (v.description !== undefined) put('description', v.description)
      if (v.eventTypes !== undefined) put('event_types', v.eventTypes === null ? null : JSON.stringify(v.eventTypes))
      return affected(pool, `UPDATE webhook_endpoints SET ${set.join(', ')} WHERE id = ? AND user_id = ?`, [...params, id, userId])
    },

    enable: (id: number, userId: number) =>
      affected(
        pool,
        'UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL, failure_streak = 0 WHERE id = ? AND user_id = ?',
        [id, userId]
      ),

    /**
     * One attempt: its log row and, when it changes, the endpoint's record (after an exhausted event, its disabling
     * once `disableAfter` events in a row failed), in one round trip; now and then the log cut to about `keepRows`.
     * True when this attempt disabled the endpoint.
     */
    async recordAttempt(a: AttemptRecord, opts: RecordOptions): Promise<boolean> {
      const insertParams: unknown[] = [
        a.endpointId,
        a.eventId,
        a.eventType,
        a.attempt,
        a.ok ? 'succeeded' : 'failed',
        a.httpStatus,
        a.error?.slice(0, 255) ?? null,
        a.responseExcerpt?.slice(0, 255) ?? null,
        a.durationMs,
        a.at
      ]
      const endpointSql = opts.touchEndpoint || a.outcome === 'exhausted' ? ENDPOINT_AFTER[a.outcome] : null
      // Most attempts: the log row alone, no lock on the endpoint, so deliveries to one endpoint run side by side.
      // Otherwise the endpoint row first: its exclusive lock is taken before the log row's foreign key check takes a
      // shared one, so attempts of one endpoint wait for each other instead of deadlocking on a shared-to-exclusive
      // upgrade. One transaction, one commit, one round trip; a deadlock victim is tried again (inTransaction).
      const statements = [INSERT_ATTEMPT]
      const params: unknown[] = [...insertParams]
      let disableAt = -1
      if (endpointSql) {
        statements.unshift('START TRANSACTION', endpointSql)
        params.unshift(a.at, a.endpointId)
        if (a.outcome === 'exhausted') {
          disableAt = statements.push(DISABLE) - 1
          params.push(a.at, opts.disabledReason, a.endpointId, opts.disableAfter)
        }
        statements.push('COMMIT')
      }
      const insertAt = statements.indexOf(INSERT_ATTEMPT)
      const { insertId, disabled } = await inTransaction(
        pool,
        async (conn) => {
          const [results] = await conn.query(statements.join(';\n'), params)
          const list = (statements.length === 1 ? [results] : results) as Array<{ affectedRows: number; insertId: number }>
          return { insertId: list[insertAt]?.insertId ?? 0, disabled: disableAt >= 0 && (list[disableAt]?.affectedRows ?? 0) > 0 }
        },
        { selfCommitting: true }
      )
      // The cap is kept by the log rows' ids: every `pruneEvery`-th row cuts its endpoint's log back (best effort: a
      // cut that fails is made by a later one).
      const every = Math.max(1, Math.min(50, Math.floor(opts.keepRows / 20)))
      if (insertId % every === 0) {
        await (async () => {
          const [kept] = await rows<{ id: number }>(pool, OLDEST_KEPT, [a.endpointId, opts.keepRows - 1])
          if (kept) await pool.query(PRUNE, [a.endpointId, kept.id])
        })().catch(() => {})
      }
      return disabled
    },

    /** A page of an endpoint's log, newest first. The caller has checked the endpoint's owner. */
    async deliveries(endpointId: number, page: { page: number; limit: number }): Promise<{ rows: DeliveryRow[]; count: number }> {
      const [list, [total]] = await Promise.all([
        rows<DeliveryRow>(pool, `SELECT ${DELIVERY} FROM webhook_deliveries d WHERE d.endpoint_id = ? ORDER BY d.id DESC LIMIT ? OFFSET ?`, [
          endpointId,
          page.limit,
          (page.page - 1) * page.limit
        ]),
        rows<{ n: number }>(pool, 'SELECT COUNT(*) AS n FROM webhook_deliveries WHERE endpoint_id = ?', [endpointId])
      ])
      return { rows: list, count: Number(total?.n ?? 0) }
    }
  }
}

export type WebhookStore = ReturnType<typeof createWebhookStore>
