import { inTransaction, isDuplicateEntry, type DbClient, type StreamStatus } from '@livestream/db'
import type { StreamEvent } from '@livestream/events'
import { sqlGuard } from './lifecycle.js'
import type { Owner, StreamRow } from './stream-view.js'
import { OUTBOX_INSERT, outboxParams, type OutboxEntry } from './event-outbox.js'
import { platformEventId, type PlatformEventType } from '../platform-events.js'

export type Pool = DbClient['pool']
export type Connection = Awaited<ReturnType<Pool['getConnection']>>
type Runner = Pool | Connection

export interface ParticipantRow {
  id: number
  streamId: number
  userId: number
  role: 'host' | 'viewer'
  joinedAt: Date
  leftAt: Date | null
  displayName: string
}

/**
 * What became of an event: `applied`, `duplicate` (its id is already in the ledger: nothing happens), or why it changed
 * nothing (`stale`, `unknown-stream`, `other-node`, `anonymous-viewer`). `not-joined`: a leave whose join is not applied
 * yet; `not-published`: an unpublish whose publish is not applied yet (the stream is still pending). For those two
 * nothing is written and the caller retries.
 */
export type EventOutcome =
  | 'applied'
  | 'duplicate'
  | 'stale'
  | 'unknown-stream'
  | 'other-node'
  | 'anonymous-viewer'
  | 'not-joined'
  | 'not-published'
  | 'unchanged'

export interface Page {
  page: number
  limit: number
}

// Columns as the domain names them (the drizzle schema's camelCase), so rows need no mapping.
const STREAM = `s.id, s.ref_no AS refNo, s.title, s.stream_key AS streamKey, s.playback_id AS playbackId, s.user_id AS userId,
  s.status, s.connection, s.connection_at AS connectionAt, s.viewer_count AS viewerCount, s.peak_viewer_count AS peakViewerCount,
  s.ingest_node_id AS ingestNodeId, s.playback_base_url AS playbackBaseUrl, s.ended_reason AS endedReason,
  s.started_at AS startedAt, s.ended_at AS endedAt, s.created_at AS createdAt, s.updated_at AS updatedAt`
const PARTICIPANT = `p.id, p.stream_id AS streamId, p.user_id AS userId, p.role, p.joined_at AS joinedAt, p.left_at AS leftAt,
  u.display_name AS displayName`

// One statement: the stream row is read under a shared lock (INSERT ... SELECT), so joins of one stream run side by
// side while a concurrent end waits for them, and a join that waited for an end finds the stream ended.
const JOIN = `INSERT INTO stream_participants (stream_id, user_id, role, joined_at)
  SELECT id, ?, IF(user_id = ?, 'host', 'viewer'), ? FROM streams WHERE id = ? AND status <> 'ended'
  ON DUPLICATE KEY UPDATE left_at = NULL`
// A join that happened while the stream was live but is applied after its end (redelivered late): the participation is
// recorded as it was, closed when the stream ended. Someone already in keeps their row.
const LATE_JOIN = `INSERT INTO stream_participants (stream_id, user_id, role, joined_at, left_at)
  SELECT id, ?, IF(user_id = ?, 'host', 'viewer'), ?, ended_at FROM streams WHERE id = ? AND status = 'ended' AND ended_at >= ?
  ON DUPLICATE KEY UPDATE stream_participants.id = stream_participants.id`
const LEAVE = 'UPDATE stream_participants SET left_at = ? WHERE stream_id = ? AND user_id = ? AND left_at IS NULL'
// Going live starts with the publisher connected (NULL, not 'connected', for a start by hand: nobody publishes yet);
// the end clears the connection and the audience (the peak stays).
const LIVE = `UPDATE streams SET status = 'live', started_at = ?, ingest_node_id = ?, playback_base_url = ?,
  connection = IF(ingest_node_id IS NULL, NULL, 'connected'), connection_at = started_at WHERE id = ? AND ${sqlGuard('live')}`
const END = `UPDATE streams SET status = 'ended', ended_at = ?, ended_reason = ?, connection = NULL, connection_at = ended_at, viewer_count = 0
  WHERE id = ? AND ${sqlGuard('ended')}`
const CLOSE_PARTICIPANTS = 'UPDATE stream_participants SET left_at = ? WHERE stream_id = ? AND left_at IS NULL'
/**
 * A stream's viewers: the sum of its nodes' reports received within the TTL (`?`: microseconds), from the
 * `stream_viewer_reports` primary key. `streamId`: an expression naming the stream.
 */
const FRESH_SUM = (streamId: string) => `SELECT COALESCE(SUM(viewers), 0) FROM stream_viewer_reports
  WHERE stream_id = ${streamId} AND received_at > NOW(3) - INTERVAL ? MICROSECOND`
// Held by another node than the event's: after a move, the old node's news is stale.
const ON_OTHER_NODE = "status = 'live' AND ingest_node_id IS NOT NULL AND ingest_node_id <> ?"

/**
 * An event's effect, its ledger row and, when applied, the outbox entry of the platform event it causes, as one
 * multi-statement transaction: one round trip. The effect's statements leave the outcome in `@o`; the ledger row goes
 * after them, so every writer locks the stream row first (no lock-order deadlocks with the routes), and its unique
 * event id makes a second delivery fail there, before COMMIT: the caller rolls back whatever it did and answers
 * `duplicate` (a concurrent delivery waits on the index, then finds it taken). `announced`: the event's kind causes a
 * platform event when applied (`unchanged` viewer counts do not).
 */
const eventBatch = (effect: string[], outcome: string, announced = true) =>
  [
    'START TRANSACTION',
    ...effect,
    `SET @o = ${outcome}`,
    `INSERT INTO stream_events (event_id, type, stream_id, node_id, session_id, outcome, occurred_at)
     SELECT ?, ?, ?, ?, ?, @o, ? FROM DUAL WHERE @o NOT IN ('not-joined', 'not-published')`,
    ...(announced ? [`${OUTBOX_INSERT} SELECT ?, ?, ?, ?, ?, ? FROM DUAL WHERE @o = 'applied'`] : []),
    'COMMIT',
    'SELECT @o AS outcome'
  ].join(';\n')

/**
 * A route's change and its outbox entry as one multi-statement transaction and round trip. `change` leaves in `@n` the
 * rows it wrote and in `@a` whether the change is news (the entry is written only then); answers both.
 */
const announcedBatch = (change: string[]) =>
  ['START TRANSACTION', ...change, `${OUTBOX_INSERT} SELECT ?, ?, ?, ?, ?, ? FROM DUAL WHERE @a`, 'COMMIT', 'SELECT @n AS n, @a AS announced'].join(';\n')

const EVENT_SQL = {
  // A live stream reconnecting through another node moves its playback there; a pending one goes live.
  published: eventBatch(
    [
      LIVE,
      'SET @n = ROW_COUNT()',
      `UPDATE streams SET ingest_node_id = ?, playback_base_url = ?, connection = 'connected', connection_at = ?
       WHERE id = ? AND @n = 0 AND status = 'live' AND NOT (ingest_node_id <=> ?)`
    ],
    "IF(@n + ROW_COUNT() > 0, 'applied', IF(EXISTS (SELECT 1 FROM streams WHERE id = ?), 'stale', 'unknown-stream'))"
  ),
  // Only the node that holds the stream may end it; every open participation closes at the same instant. An unpublish
  // always follows its publish, so one that finds the stream pending overtook it (concurrent consumers): retried.
  unpublished: eventBatch(
    [`${END} AND status = 'live' AND NOT (${ON_OTHER_NODE})`, 'SET @n = ROW_COUNT()', `${CLOSE_PARTICIPANTS} AND @n > 0`],
    `IF(@n > 0, 'applied', IFNULL((SELECT IF(${ON_OTHER_NODE}, 'other-node', IF(status = 'pending', 'not-published', 'stale'))
       FROM streams WHERE id = ?), 'unknown-stream'))`
  ),
  // Joining an ended stream counts only for a join made before the end (redelivered after it).
  joined: eventBatch(
    [JOIN, LATE_JOIN],
    "IFNULL((SELECT IF(status <> 'ended' OR ended_at >= ?, 'applied', 'stale') FROM streams WHERE id = ?), 'unknown-stream')"
  ),
  left: eventBatch(
    [LEAVE, 'SET @n = ROW_COUNT()'],
    `IF(@n > 0, 'applied', IF(EXISTS (SELECT 1 FROM stream_participants WHERE stream_id = ? AND user_id = ?), 'stale',
       IF(EXISTS (SELECT 1 FROM streams WHERE id = ?), 'not-joined', 'unknown-stream')))`
  ),
  // The publisher dropped or came back, as the node holding the stream saw it; a report older than the last one is stale.
  connection: eventBatch(
    [
      `UPDATE streams SET connection = ?, connection_at = ? WHERE id = ? AND status = 'live' AND ingest_node_id <=> ?
       AND (connection_at IS NULL OR connection_at <= ?)`,
      'SET @n = ROW_COUNT()'
    ],
    `IF(@n > 0, 'applied', IFNULL((SELECT IF(${ON_OTHER_NODE}, 'other-node', 'stale') FROM streams WHERE id = ?), 'unknown-stream'))`
  ),
  // A node's viewer count: kept per node (a report older than the one stored changes nothing), then the stream's count
  // is the sum of the reports received within the TTL, and its peak the most ever summed. The stream row is locked
  // first, like every writer's. Outcome `applied` when the count changed, `unchanged` when stored without changing it.
  viewers: eventBatch(
    [
      'SET @live = NULL, @prev = NULL',
      "SELECT status = 'live' INTO @live FROM streams WHERE id = ? FOR UPDATE",
      'SELECT reported_at INTO @prev FROM stream_viewer_reports WHERE stream_id = ? AND node_id = ?',
      'SET @n = @live = 1 AND (@prev IS NULL OR @prev <= ?)',
      `INSERT INTO stream_viewer_reports (stream_id, node_id, viewers, reported_at, received_at)
       SELECT ?, ?, ?, ?, NOW(3) FROM DUAL WHERE @n
       ON DUPLICATE KEY UPDATE viewers = VALUES(viewers), reported_at = VALUES(reported_at), received_at = VALUES(received_at)`,
      `SET @sum = (${FRESH_SUM('?')})`,
      `UPDATE streams SET viewer_count = @sum, peak_viewer_count = GREATEST(peak_viewer_count, @sum)
       WHERE id = ? AND @n AND viewer_count <> @sum`,
      'SET @c = ROW_COUNT()'
    ],
    "IF(@live IS NULL, 'unknown-stream', IF(NOT @n, 'stale', IF(@c > 0, 'applied', 'unchanged')))"
  ),
  unsupported: eventBatch([], "'stale'", false),
  anonymous: eventBatch([], "'anonymous-viewer'", false)
}

// A join: the participation (see JOIN), news when new or brought back from `left`. mysql2 counts found rows, so a
// no-op re-join reads 1 like an insert: only a row joined at this join's instant is new.
const JOIN_ANNOUNCED = announcedBatch([
  JOIN,
  'SET @n = ROW_COUNT()',
  'SET @a = @n = 2 OR (@n = 1 AND EXISTS (SELECT 1 FROM stream_participants WHERE stream_id = ? AND user_id = ? AND joined_at = ?))'
])
const LEAVE_ANNOUNCED = announcedBatch([LEAVE, 'SET @n = ROW_COUNT()', 'SET @a = @n > 0'])
// A live stream's viewer count set to the sum of its fresh reports, when it is not that already.
const REFRESH_VIEWERS_ANNOUNCED = announcedBatch([
  `UPDATE streams s SET s.viewer_count = (${FRESH_SUM('s.id')}), s.peak_viewer_count = GREATEST(s.peak_viewer_count, s.viewer_count)
   WHERE s.id = ? AND s.status = 'live' AND s.viewer_count <> (${FRESH_SUM('s.id')})`,
  'SET @n = ROW_COUNT()',
  'SET @a = @n > 0'
])
// A new stream: the outbox entry takes its id and its creation instant from the row just written.
const CREATE_ANNOUNCED = [
  'START TRANSACTION',
  'INSERT INTO streams (ref_no, title, stream_key, playback_id, user_id) VALUES (?, ?, ?, ?, ?)',
  'SET @id = LAST_INSERT_ID()',
  `${OUTBOX_INSERT} SELECT ?, 'stream.created', id, NULL, NULL, created_at FROM streams WHERE id = @id`,
  'COMMIT',
  'SELECT @id AS id'
].join(';\n')

const EVENT_TYPES: Partial<Record<StreamEvent['type'], PlatformEventType>> = {
  'stream.published': 'stream.live',
  'stream.unpublished': 'stream.ended',
  'stream.reconnecting': 'stream.reconnecting',
  'stream.resumed': 'stream.live',
  'stream.viewers': 'stream.viewers',
  'viewer.joined': 'participant.joined',
  'viewer.left': 'participant.left'
}

/**
 * The platform event an ingest event causes when applied, as its outbox entry: its id is derived from the ingest
 * event's, so a redelivery could never make a second one. Undefined for what is never announced (anonymous viewers).
 */
export function outboxEntryOf(e: StreamEvent): OutboxEntry | undefined {
  const type = EVENT_TYPES[e.type]
  if (!type) return undefined
  const participantUserId = e.type === 'viewer.joined' || e.type === 'viewer.left' ? e.userId : null
  if ((e.type === 'viewer.joined' || e.type === 'viewer.left') && participantUserId === null) return undefined
  return {
    eventId: platformEventId(e.id),
    type,
    streamId: e.streamId,
    participantUserId,
    reason: e.type === 'stream.unpublished' ? e.reason : null,
    occurredAt: new Date(e.at)
  }
}

/** The first statement's rows of a multi-statement answer's last result (the batches end with a `SELECT`). */
const lastRow = <T>(results: unknown): T => ((results as unknown[]).at(-1) as T[])[0]!

/** The parameters of an event's batch, in the order of its placeholders. */
function eventParams(e: StreamEvent, viewerTtlMs: number): [keyof typeof EVENT_SQL, unknown[]] {
  const at = new Date(e.at)
  const id = e.streamId
  const entry = outboxEntryOf(e)
  // The ledger row, then the outbox entry's values (batches of events that are never announced have no outbox insert).
  const ledger = [e.id, e.type, id, e.nodeId, e.sessionId, at, ...(entry ? outboxParams(entry) : [])]
  switch (e.type) {
    case 'stream.published':
      return ['published', [at, e.nodeId, e.playbackBaseUrl, id, e.nodeId, e.playbackBaseUrl, at, id, e.nodeId, id, ...ledger]]
    case 'stream.reconnecting':
    case 'stream.resumed':
      return [
        'connection',
        [e.type === 'stream.reconnecting' ? 'reconnecting' : 'connected', at, id, e.nodeId, at, e.nodeId, id, ...ledger]
      ]
    case 'stream.viewers':
      return ['viewers', [id, id, e.nodeId, at, id, e.nodeId, e.viewers, at, id, viewerTtlMs * 1000, id, ...ledger]]
    case 'stream.unpublished':
      return ['unpublished', [at, e.reason, id, e.nodeId, at, id, e.nodeId, id, ...ledger]]
    case 'viewer.joined':
      if (e.userId === null) return ['anonymous', ledger]
      return ['joined', [e.userId, e.userId, at, id, e.userId, e.userId, at, id, at, at, id, ...ledger]]
    case 'viewer.left':
      if (e.userId === null) return ['anonymous', ledger]
      return ['left', [at, id, e.userId, id, e.userId, id, ...ledger]]
  }
}

/** How long a node's viewer report counts after the api received it (`VIEWER_REPORT_TTL_MS`). */
export const DEFAULT_VIEWER_REPORT_TTL_MS = 20_000

async function rows<T>(run: Runner, sql: string, params: unknown[]): Promise<T[]> {
  const [result] = await run.query(sql, params)
  return result as T[]
}
async function affected(run: Runner, sql: string, params: unknown[]): Promise<number> {
  const [result] = await run.query(sql, params)
  return (result as { affectedRows: number }).affectedRows
}

/**
 * Every statement of the streams domain, in one module: the service's reads, the lifecycle's writes (each guarded by
 * its source states from `lifecycle.ts`, so a move the rules refuse writes nothing even without the lock) and the
 * consumer's event batches. Plain SQL through mysql2 with every value as a parameter; drizzle keeps the schema and the
 * migrations. One way, so that every write is seen (the database keeps `updated_at`) and the consumer's hot path can be
 * one round trip per event, which drizzle cannot batch.
 */
export function createStreamStore(pool: Pool, opts: { viewerReportTtlMs?: number } = {}) {
  const viewerTtlMs = opts.viewerReportTtlMs ?? DEFAULT_VIEWER_REPORT_TTL_MS

  /** Runs an `announcedBatch` with the change's parameters, then the entry's; `announced`: the entry was written. */
  const announced = (sql: string, params: unknown[], entry: OutboxEntry) =>
    inTransaction(
      pool,
      async (conn) => {
        const [results] = await conn.query(sql, [...params, ...outboxParams(entry)])
        const last = lastRow<{ n: number | string; announced: number | string | null }>(results)
        return { written: Number(last.n), announced: Number(last.announced) === 1 }
      },
      { selfCommitting: true }
    )
  return {
    pool,

    /** A new stream and its `stream.created` outbox entry (`eventId`), in one transaction and round trip. */
    async insert(v: { refNo: string; title: string; streamKey: string; playbackId: string; userId: number }, eventId: string): Promise<number> {
      return inTransaction(
        pool,
        async (conn) => {
          const [results] = await conn.query(CREATE_ANNOUNCED, [v.refNo, v.title, v.streamKey, v.playbackId, v.userId, eventId])
          return Number(lastRow<{ id: number }>(results).id)
        },
        { selfCommitting: true }
      )
    },

    async byId(id: number, run: Runner = pool): Promise<StreamRow | undefined> {
      return (await rows<StreamRow>(run, `SELECT ${STREAM} FROM streams s WHERE s.id = ?`, [id]))[0]
    },

    async byIdWithOwner(id: number): Promise<{ stream: StreamRow; owner: Owner } | undefined> {
      const [row] = await rows<StreamRow & { ownerName: string }>(
        pool,
        `SELECT ${STREAM}, u.display_name AS ownerName FROM streams s JOIN users u ON u.id = s.user_id WHERE s.id = ?`,
        [id]
      )
      if (!row) return undefined
      const { ownerName, ...stream } = row
      return { stream, owner: { id: stream.userId, displayName: ownerName } }
    },

    async byKey(ownerId: number, streamKey: string): Promise<StreamRow | undefined> {
      return (await rows<StreamRow>(pool, `SELECT ${STREAM} FROM streams s WHERE s.stream_key = ? AND s.user_id = ?`, [streamKey, ownerId]))[0]
    },

    async list(filter: Page & { status?: StreamStatus | undefined; userId?: number | undefined }): Promise<{ rows: StreamRow[]; count: number }> {
      const where: string[] = []
      const params: unknown[] = []
      if (filter.status) {
        where.push('s.status = ?')
        params.push(filter.status)
      }
      if (filter.userId !== undefined) {
        where.push('s.user_id = ?')
        params.push(filter.userId)
      }
      const cond = where.length ? `WHERE ${where.join(' AND ')}` : ''
      const [page, [total]] = await Promise.all([
        rows<StreamRow>(pool, `SELECT ${STREAM} FROM streams s ${cond} ORDER BY s.id DESC LIMIT ? OFFSET ?`, [
          ...params,
          filter.limit,
          (filter.page - 1) * filter.limit
        ]),
        rows<{ n: number }>(pool, `SELECT COUNT(*) AS n FROM streams s ${cond}`, params)
      ])
      return { rows: page, count: Number(total?.n ?? 0) }
    },

    /** The stream row, locked until the transaction ends. */
    lock: async (conn: Connection, id: number) => (await rows<StreamRow>(conn, `SELECT ${STREAM} FROM streams s WHERE s.id = ? FOR UPDATE`, [id]))[0],

    setKey: (conn: Connection, id: number, streamKey: string) => affected(conn, 'UPDATE streams SET stream_key = ? WHERE id = ?', [streamKey, id]),

    /** `-> live`: when, on which node, and the playback base that node serves. */
    live: (conn: Connection, id: number, at: Date, nodeId: string | null, playbackBaseUrl: string | null) =>
      affected(conn, LIVE, [at, nodeId, playbackBaseUrl, id]),

    /** `-> ended`: when and why, and every open participation closes at the same instant. */
    async end(conn: Connection, id: number, at: Date, reason: string): Promise<number> {
      const n = await affected(conn, END, [at, reason, id])
      if (n > 0) await affected(conn, CLOSE_PARTICIPANTS, [at, id])
      return n
    },

    /**
     * Joins or re-joins (one row per stream and user; the owner is the host), with the `participant.joined` outbox entry
     * when the join is news, in one transaction and round trip. `written` 0: stream missing, ended, or a no-op.
     */
    join: (streamId: number, userId: number, at: Date, eventId: string) =>
      announced(JOIN_ANNOUNCED, [userId, userId, at, streamId, streamId, userId, at], {
        eventId,
        type: 'participant.joined',
        streamId,
        participantUserId: userId,
        reason: null,
        occurredAt: at
      }),

    /** Closes an open participation, with its `participant.left` outbox entry; `written` 0: not in, or already left. */
    leave: (streamId: number, userId: number, at: Date, eventId: string) =>
      announced(LEAVE_ANNOUNCED, [at, streamId, userId], {
        eventId,
        type: 'participant.left',
        streamId,
        participantUserId: userId,
        reason: null,
        occurredAt: at
      }),

    status: async (id: number) => (await rows<{ status: StreamStatus }>(pool, 'SELECT status FROM streams WHERE id = ?', [id]))[0],

    async participant(streamId: number, userId: number): Promise<ParticipantRow | undefined> {
      return (
        await rows<ParticipantRow>(
          pool,
          `SELECT ${PARTICIPANT} FROM stream_participants p JOIN users u ON u.id = p.user_id WHERE p.stream_id = ? AND p.user_id = ?`,
          [streamId, userId]
        )
      )[0]
    },

    /**
     * A stream and one user's participation in it, in one query (what an announcement of a participant change needs);
     * `participant` undefined when that user never joined it.
     */
    async withParticipant(streamId: number, userId: number): Promise<{ stream: StreamRow; participant: ParticipantRow | undefined } | undefined> {
      const [row] = await rows<StreamRow & { pId: number | null; pRole: ParticipantRow['role']; pJoinedAt: Date; pLeftAt: Date | null; pName: string }>(
        pool,
        `SELECT ${STREAM}, p.id AS pId, p.role AS pRole, p.joined_at AS pJoinedAt, p.left_at AS pLeftAt, u.display_name AS pName
         FROM streams s LEFT JOIN (stream_participants p JOIN users u ON u.id = p.user_id) ON p.stream_id = s.id AND p.user_id = ?
         WHERE s.id = ?`,
        [userId, streamId]
      )
      if (!row) return undefined
      const { pId, pRole, pJoinedAt, pLeftAt, pName, ...stream } = row
      const participant =
        pId === null ? undefined : { id: pId, streamId, userId, role: pRole, joinedAt: pJoinedAt, leftAt: pLeftAt, displayName: pName }
      return { stream, participant }
    },

    async participants(streamId: number, page: Page): Promise<{ rows: ParticipantRow[]; count: number }> {
      const [list, [total]] = await Promise.all([
        rows<ParticipantRow>(
          pool,
          `SELECT ${PARTICIPANT} FROM stream_participants p JOIN users u ON u.id = p.user_id WHERE p.stream_id = ? ORDER BY p.id LIMIT ? OFFSET ?`,
          [streamId, page.limit, (page.page - 1) * page.limit]
        ),
        rows<{ n: number }>(pool, 'SELECT COUNT(*) AS n FROM stream_participants WHERE stream_id = ?', [streamId])
      ])
      return { rows: list, count: Number(total?.n ?? 0) }
    },

    /**
     * Live streams held by an ingest node, for the reaper, with `settledAt`: the later of when the stream went live (the
     * node's clock) and when the api last wrote its row (the database's). A publish replayed from a node's outbox keeps
     * the instant it happened, long before it is applied; the reaper measures from the later one.
     */
    liveOnNodes: () =>
      rows<{ id: number; nodeId: string; settledAt: Date }>(
        pool,
        `SELECT id, ingest_node_id AS nodeId, GREATEST(COALESCE(started_at, updated_at), updated_at) AS settledAt
         FROM streams WHERE status = 'live' AND ingest_node_id IS NOT NULL`,
        []
      ),

    /** How many streams are in each status (for metrics): one pass over the status index. */
    countByStatus: () => rows<{ status: StreamStatus; n: number }>(pool, 'SELECT status, COUNT(*) AS n FROM streams GROUP BY status', []),

    /**
     * Streams made live by hand (`POST /start`) that no publisher has reached since `before`: no node ever took them
     * (a publish sets the node). The reaper ends them as `no-publisher`.
     */
    liveWithoutPublisherSince: (before: Date) =>
      rows<{ id: number }>(
        pool,
        "SELECT id FROM streams WHERE status = 'live' AND ingest_node_id IS NULL AND COALESCE(started_at, updated_at) < ?",
        [before]
      ),

    /** Open participations of a stream: the participant count live updates carry. */
    async openParticipants(streamId: number): Promise<number> {
      const [row] = await rows<{ n: number }>(pool, 'SELECT COUNT(*) AS n FROM stream_participants WHERE stream_id = ? AND left_at IS NULL', [streamId])
      return Number(row?.n ?? 0)
    },

    async byPlaybackId(playbackId: string): Promise<StreamRow | undefined> {
      return (await rows<StreamRow>(pool, `SELECT ${STREAM} FROM streams s WHERE s.playback_id = ?`, [playbackId]))[0]
    },

    /**
     * Live streams whose viewer count is no longer the sum of their fresh reports (a node stopped reporting): each is
     * set to that sum, under its row lock, with its `stream.viewers` outbox entry (one round trip each); returns the
     * entries of the streams changed. Ended streams' reports are dropped on the way. One indexed read per live stream:
     * the reaper runs it every round.
     */
    async refreshViewerCounts(): Promise<OutboxEntry[]> {
      const ttl = viewerTtlMs * 1000
      const stale = await rows<{ id: number }>(
        pool,
        `SELECT s.id FROM streams s WHERE s.status = 'live' AND s.viewer_count <> (${FRESH_SUM('s.id')})`,
        [ttl]
      )
      const changed: OutboxEntry[] = []
      for (const { id } of stale) {
        const entry: OutboxEntry = { eventId: platformEventId(), type: 'stream.viewers', streamId: id, participantUserId: null, reason: null, occurredAt: new Date() }
        const { written } = await announced(REFRESH_VIEWERS_ANNOUNCED, [ttl, id, ttl], entry)
        if (written > 0) changed.push(entry)
      }
      await pool.query(
        "DELETE r FROM stream_viewer_reports r JOIN streams s ON s.id = r.stream_id WHERE s.status = 'ended'"
      )
      return changed
    },

    /**
     * Deletes up to `limit` viewer-report rows of the event ledger recorded before `before` (index
     * `stream_events_type_recorded_idx`); returns how many went. Those rows only dedupe redeliveries, which come within
     * minutes, and a report delivered again after its row is gone is still judged by its date (see `viewers`).
     */
    async pruneViewerReports(before: Date, limit: number): Promise<number> {
      const [res] = await pool.query("DELETE FROM stream_events WHERE type = 'stream.viewers' AND recorded_at < ? LIMIT ?", [before, limit])
      return (res as { affectedRows: number }).affectedRows
    },

    /** One ingest event and its ledger row, in one transaction and one round trip (two for a duplicate: the rollback). */
    async writeEvent(event: StreamEvent): Promise<EventOutcome> {
      const [kind, params] = eventParams(event, viewerTtlMs)
      try {
        return await inTransaction(
          pool,
          async (conn) => {
            const [results] = await conn.query(EVENT_SQL[kind], params)
            const last = (results as unknown[]).at(-1) as Array<{ outcome: EventOutcome }>
            return last[0]!.outcome
          },
          { selfCommitting: true }
        )
      } catch (err) {
        if (isDuplicateEntry(err)) return 'duplicate'
        throw err
      }
    }
  }
}
export type StreamStore = ReturnType<typeof createStreamStore>
