import t from 'tap'
import { eq } from 'drizzle-orm'
import { Redis } from 'ioredis'
import { createDbClient, streamEvents, streams, users } from '@livestream/db'
import { createTestDatabase } from '@livestream/db/testing'
import { heartbeatKey, type NodeHeartbeat } from '@livestream/events'
import { dropTestPrefix, testQueuePrefix } from '@livestream/events/testing'
import { HEARTBEAT_FORGET_MS, reapLostStreams, reapUnpublishedStreams } from '../../src/workers/lost-streams-reaper.js'
import { newEventId } from '@livestream/events'
import { streamView } from '../../src/plugins/app/streams/stream-view.js'
import { createStreamsService } from '../../src/plugins/app/streams/streams-service.js'
import { build } from '../helper.js'

/** Polls `check` until it returns something (every 50 ms, up to 10 s). */
async function waitUntil<T>(check: () => Promise<T | null>): Promise<T> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
    const v = await check()
    if (v !== null) return v
  }
  throw new Error('timed out')
}

const tdb = await createTestDatabase('ls_reap')
const client = createDbClient({ url: tdb.url, multipleStatements: true })
const redis = new Redis(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379')
const prefix = testQueuePrefix('reap')
t.teardown(async () => {
  await dropTestPrefix(redis, prefix)
  redis.disconnect()
  await client.close()
  await tdb.drop()
})
const service = createStreamsService(client)
const [u] = await client.db.insert(users).values({ email: 'o@example.com', displayName: 'O' })
const deps = { streams: service, redis, queuePrefix: prefix, nodeTimeoutMs: 30_000 }

const liveOn = async (nodeId: string, at = new Date()) => {
  const s = await service.create(u.insertId, nodeId)
  await service.transition(s.id, 'live', { ingestNodeId: nodeId, playbackBaseUrl: 'http://x', at })
  return s.id
}
/** As if the api had last written the stream `ms` ago (the reaper measures from then, or from its going live). */
const settle = (id: number, ms: number) =>
  client.pool.query('UPDATE streams SET updated_at = NOW(3) - INTERVAL ? MICROSECOND WHERE id = ?', [ms * 1000, id])
const beat = (hb: Partial<NodeHeartbeat> & { nodeId: string }) =>
  redis.hset(heartbeatKey(prefix), hb.nodeId, JSON.stringify({ playbackBaseUrl: 'http://x', at: Date.now(), streamIds: [], ...hb }))
const status = async (id: number) => (await client.db.select().from(streams).where(eq(streams.id, id)))[0]!

t.test('streams of a node silent for longer than the timeout are ended as node-lost', async (t) => {
  const id = await liveOn('silent')
  await beat({ nodeId: 'silent', at: Date.now() - 31_000, streamIds: [id] })
  const reaped = await reapLostStreams(deps)
  t.same(reaped, [{ streamId: id, nodeId: 'silent', reason: 'node-lost' }])
  const s = await status(id)
  t.equal(s.status, 'ended')
  t.equal(s.endedReason, 'node-lost')
})

t.test('a node that beats and holds its stream keeps it live', async (t) => {
  const id = await liveOn('healthy')
  await beat({ nodeId: 'healthy', streamIds: [id] })
  t.same(await reapLostStreams(deps), [])
  t.equal((await status(id)).status, 'live')
})

t.test('a restarted node that no longer holds a stream loses it as not-on-node', async (t) => {
  const id = await liveOn('restarted', new Date(Date.now() - 10_000))
  await settle(id, 10_000)
  await beat({ nodeId: 'restarted', streamIds: [] })
  const reaped = await reapLostStreams(deps)
  t.same(reaped.map((r) => r.reason), ['not-on-node'])
})

t.test('a stream that just went live is not reaped for a heartbeat that predates it', async (t) => {
  const id = await liveOn('fresh')
  await beat({ nodeId: 'fresh', streamIds: [] })
  t.same(await reapLostStreams(deps), [])
  t.equal((await status(id)).status, 'live')
})

t.test('a publish applied late (replayed from a restarted node\'s outbox) leaves its unpublish the grace to arrive', async (t) => {
  // It happened a minute ago on the node, and the api applies it now; the node, restarted, no longer holds the stream.
  const id = await liveOn('replayed', new Date(Date.now() - 60_000))
  await beat({ nodeId: 'replayed', streamIds: [] })
  t.same(await reapLostStreams(deps), [], 'not reaped as not-on-node the moment it is applied')
  t.equal((await status(id)).status, 'live')
  // Once the grace has passed since the api wrote it with no unpublish, the absence counts.
  await settle(id, 6_000)
  t.same((await reapLostStreams(deps)).map((r) => [r.streamId, r.reason]), [[id, 'not-on-node']])
})

t.test('a node never heard from loses its streams once the timeout has passed since they went live', async (t) => {
  const old = await liveOn('ghost', new Date(Date.now() - 60_000))
  await settle(old, 60_000)
  const young = await liveOn('ghost2')
  const reaped = await reapLostStreams(deps)
  t.same(reaped.map((r) => r.streamId), [old])
  t.equal((await status(young)).status, 'live')
})

t.test('streams made live by hand (no node) are left alone', async (t) => {
  const s = await service.create(u.insertId, 'manual')
  await service.transition(s.id, 'live', { actorUserId: u.insertId, at: new Date(Date.now() - 3_600_000) })
  await reapLostStreams(deps)
  t.equal((await status(s.id)).status, 'live')
})

t.test('heartbeats a day old are forgotten; younger ones, stale or not, stay', async (t) => {
  await beat({ nodeId: 'retired-pod', at: Date.now() - HEARTBEAT_FORGET_MS - 60_000 })
  await beat({ nodeId: 'silent-an-hour', at: Date.now() - 3600_000 })
  await beat({ nodeId: 'beating' })
  await reapLostStreams(deps)
  const left = await redis.hkeys(heartbeatKey(prefix))
  t.notOk(left.includes('retired-pod'), 'the day-old one is deleted')
  t.ok(left.includes('silent-an-hour') && left.includes('beating'), 'the others stay')
})

const URLS = { streamServerUrl: 'http://x', rtmpPublicUrl: 'rtmp://x' }
const startedByHand = async (title: string, at: Date) => {
  const s = await service.create(u.insertId, title)
  await service.transition(s.id, 'live', { actorUserId: u.insertId, at })
  return s.id
}

t.test('a stream started by hand shows awaiting-publisher, and ends as no-publisher once the timeout has passed with none', async (t) => {
  const TIMEOUT = 600_000
  const old = await startedByHand('forgotten', new Date(Date.now() - TIMEOUT - 1_000))
  const young = await startedByHand('just started', new Date(Date.now() - TIMEOUT + 60_000))
  t.equal(streamView(await status(old), URLS).connection, 'awaiting-publisher', 'nobody publishes: the view says so')
  const ended = await reapUnpublishedStreams(deps, TIMEOUT)
  t.ok(ended.includes(old), 'the old one is ended')
  t.notOk(ended.includes(young), 'the young one is not')
  const s = await status(old)
  t.equal(s.status, 'ended')
  t.equal(s.endedReason, 'no-publisher')
  t.equal(streamView(s, URLS).connection, null, 'an ended stream has no connection')
  t.equal((await status(young)).status, 'live')
  t.same(await reapUnpublishedStreams(deps, TIMEOUT), [], 'a second round ends nothing more')
})

t.test('a stream started by hand that a publisher reached is not ended for want of one', async (t) => {
  const id = await startedByHand('reached', new Date(Date.now() - 3_600_000))
  const outcome = await service.applyEvent({
    type: 'stream.published',
    id: newEventId(),
    nodeId: 'node-r',
    sessionId: 'sess-r',
    at: new Date().toISOString(),
    streamId: id,
    playbackBaseUrl: 'http://node-r'
  })
  t.equal(outcome, 'applied')
  t.equal(streamView(await status(id), URLS).connection, 'connected', 'the publish moved it to the node, connected')
  t.notOk((await reapUnpublishedStreams(deps, 1_000)).includes(id))
  t.equal((await status(id)).status, 'live')
})

t.test('NO_PUBLISHER_TIMEOUT_MS=0 never ends a stream for want of a publisher', async (t) => {
  const id = await startedByHand('patient', new Date(Date.now() - 30 * 24 * 3_600_000))
  t.same(await reapUnpublishedStreams(deps, 0), [])
  t.equal((await status(id)).status, 'live')
})

t.test('the reaper plugin prunes the viewer reports past VIEWER_LEDGER_RETENTION_MS from the ledger, and keeps the rest', async (t) => {
  const app = await build(t, { REAPER_INTERVAL_MS: '50', VIEWER_LEDGER_RETENTION_MS: '60000' }, { reaper: true })
  const old = new Date(Date.now() - 120_000)
  const row = (type: string, recordedAt: Date) => ({ eventId: newEventId(), type, streamId: null, nodeId: 'node-a', outcome: 'unknown-stream', occurredAt: recordedAt, recordedAt })
  const rows = [row('stream.viewers', old), row('stream.viewers', old), row('stream.published', old), row('stream.viewers', new Date())]
  await app.db.insert(streamEvents).values(rows)
  const left = await waitUntil(async () => {
    const ids = (await app.db.select().from(streamEvents)).map((r) => r.eventId)
    return ids.length === 2 ? ids : null
  })
  t.same(left.sort(), [rows[2]!.eventId, rows[3]!.eventId].sort(), 'the old publish and the recent report stay')
})
