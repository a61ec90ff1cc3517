import t from 'tap'
import { eq } from 'drizzle-orm'
import { createDbClient, streamEvents, streams, streamViewerReports, users } from '@livestream/db'
import { createTestDatabase } from '@livestream/db/testing'
import { newEventId, type StreamEvent } from '@livestream/events'
import { handleStreamEvent } from '../../src/workers/stream-events-consumer.js'
import { createStreamsService } from '../../src/plugins/app/streams/streams-service.js'
import { createPlatformEvents, type PlatformEvent } from '../../src/plugins/app/platform-events.js'

// `stream.viewers` reports from ingest nodes: stored per node, summed over the fresh ones into `viewer_count`.

const tdb = await createTestDatabase('ls_viewers')
const client = createDbClient({ url: tdb.url, multipleStatements: true })
t.teardown(async () => {
  await client.close()
  await tdb.drop()
})
const db = client.db
const announced: PlatformEvent[] = []
const events = createPlatformEvents({ warn: () => {} })
events.subscribe((e) => void announced.push(e))
const service = createStreamsService(client, { events })
const apply = async (e: StreamEvent) => (await handleStreamEvent(e, service)).outcome
const [u] = await db.insert(users).values({ email: 'o@example.com', displayName: 'Owner' })
const ownerId = u.insertId

let clock = Date.now()
/** Event times move forward by a second per event, as a node's reports do. */
const nextAt = () => new Date((clock += 1_000)).toISOString()
const report = (streamId: number, nodeId: string, viewers: number, at = nextAt()): StreamEvent => ({
  type: 'stream.viewers',
  id: newEventId(),
  nodeId,
  sessionId: 'sess-1',
  at,
  streamId,
  viewers
})
const published = (streamId: number, nodeId = 'node-a'): StreamEvent => ({
  type: 'stream.published',
  id: newEventId(),
  nodeId,
  sessionId: 'sess-1',
  at: nextAt(),
  streamId,
  playbackBaseUrl: `http://${nodeId}:8000`
})
const unpublished = (streamId: number, nodeId = 'node-a'): StreamEvent => ({
  type: 'stream.unpublished',
  id: newEventId(),
  nodeId,
  sessionId: 'sess-1',
  at: nextAt(),
  streamId,
  reason: 'publisher-left'
})
const counts = async (id: number) => {
  const [row] = await db.select({ viewers: streams.viewerCount, peak: streams.peakViewerCount }).from(streams).where(eq(streams.id, id))
  return row
}
/** What a node that stopped reporting looks like after the TTL: its report was received long ago. */
const age = (id: number, nodeId: string) =>
  client.pool.query('UPDATE stream_viewer_reports SET received_at = NOW(3) - INTERVAL 1 HOUR WHERE stream_id = ? AND node_id = ?', [id, nodeId])
const liveStream = async (title: string) => {
  const s = await service.create(ownerId, title)
  t.equal(await apply(published(s.id)), 'applied')
  return s
}

t.test('two nodes serving one stream: its viewer count is the sum of their reports, its peak the most summed', async (t) => {
  const s = await liveStream('two nodes')
  t.equal(await apply(report(s.id, 'node-a', 120)), 'applied')
  t.equal(await apply(report(s.id, 'node-b', 30)), 'applied')
  t.same(await counts(s.id), { viewers: 150, peak: 150 })
  t.equal(await apply(report(s.id, 'node-a', 70)), 'applied', 'a node reports fewer')
  t.same(await counts(s.id), { viewers: 100, peak: 150 }, 'the peak stays')
  const rows = await db.select().from(streamViewerReports).where(eq(streamViewerReports.streamId, s.id))
  t.same(rows.map((r) => [r.nodeId, r.viewers]).sort(), [['node-a', 70], ['node-b', 30]], 'one row per node, the latest')
})

t.test('a report older than the one stored changes nothing (stale); an unchanged refresh is stored without an announcement', async (t) => {
  const s = await liveStream('ordering')
  const early = nextAt()
  t.equal(await apply(report(s.id, 'node-a', 40)), 'applied')
  t.equal(await apply(report(s.id, 'node-a', 999, early)), 'stale', 'delivered late, older than the stored one')
  t.same(await counts(s.id), { viewers: 40, peak: 40 })
  const before = announced.length
  t.equal(await apply(report(s.id, 'node-a', 40)), 'unchanged', 'the refresh of an unchanged count')
  t.equal(announced.length, before, 'nothing to announce')
  t.equal(await apply(report(s.id, 'node-a', 41)), 'applied')
  const last = announced.at(-1)
  t.equal(last?.type, 'stream.viewers', 'a changed count is announced')
  t.equal(last?.data.stream.viewer_count, 41)
  t.equal(last?.data.stream.peak_viewer_count, 41)
})

t.test("a node that stopped reporting stops counting: at another node's next report, or at the reaper's refresh", async (t) => {
  const s = await liveStream('gone node')
  await apply(report(s.id, 'node-a', 10))
  await apply(report(s.id, 'node-b', 5))
  t.same(await counts(s.id), { viewers: 15, peak: 15 })
  await age(s.id, 'node-b')
  t.equal(await apply(report(s.id, 'node-a', 11)), 'applied')
  t.same(await counts(s.id), { viewers: 11, peak: 15 }, "node-b's stale report left the sum")

  await age(s.id, 'node-a')
  const before = announced.length
  const changed = await service.refreshViewers()
  t.ok(changed.includes(s.id), 'the refresh changed this stream')
  t.same(await counts(s.id), { viewers: 0, peak: 15 })
  t.equal(announced.length, before + changed.length, 'each change announced once')
  t.equal(announced.at(-1)?.type, 'stream.viewers')
  t.same(await service.refreshViewers(), [], 'a second refresh finds nothing to do')
})

t.test('ended resets the count and keeps the peak; later reports are stale and ended streams lose their rows', async (t) => {
  const s = await liveStream('ends')
  await apply(report(s.id, 'node-a', 8))
  t.equal(await apply(unpublished(s.id)), 'applied')
  t.same(await counts(s.id), { viewers: 0, peak: 8 })
  t.equal(await apply(report(s.id, 'node-a', 9)), 'stale', 'a report after the end')
  t.same(await counts(s.id), { viewers: 0, peak: 8 })
  await service.refreshViewers()
  t.same(await db.select().from(streamViewerReports).where(eq(streamViewerReports.streamId, s.id)), [], 'the reports of an ended stream are dropped')
})

t.test('reports of a stream not live, or unknown, change nothing and are recorded in the ledger', async (t) => {
  const s = await service.create(ownerId, 'pending')
  const e = report(s.id, 'node-a', 3)
  t.equal(await apply(e), 'stale')
  t.same(await counts(s.id), { viewers: 0, peak: 0 })
  t.equal(await apply(report(2_000_000, 'node-a', 3)), 'unknown-stream')
  const [row] = await db.select().from(streamEvents).where(eq(streamEvents.eventId, e.id))
  t.equal(row?.outcome, 'stale')
  t.equal(await apply(e), 'duplicate', 'the same report twice is dropped by the ledger')
})

t.test('a report costs one MySQL round trip', async (t) => {
  const s = await liveStream('round trip')
  const counted = createDbClient({ url: tdb.url, multipleStatements: true })
  t.teardown(() => counted.close())
  let trips = 0
  type Queryable = { query: (...args: never[]) => Promise<unknown> }
  const count = <T extends Queryable>(target: T): T => {
    const original = target.query.bind(target)
    target.query = ((...args: never[]) => {
      trips++
      return original(...args)
    }) as T['query']
    return target
  }
  count(counted.pool as unknown as Queryable)
  const getConnection = counted.pool.getConnection.bind(counted.pool)
  counted.pool.getConnection = async () => count((await getConnection()) as unknown as Queryable) as never
  const svc = createStreamsService(counted)
  t.equal((await handleStreamEvent(report(s.id, 'node-a', 12), svc)).outcome, 'applied')
  t.equal(trips, 1)
  trips = 0
  t.equal((await handleStreamEvent(report(s.id, 'node-a', 12), svc)).outcome, 'unchanged')
  t.equal(trips, 1)
})

t.test('concurrent reports of several nodes for one stream all land (no lost update, no deadlock)', async (t) => {
  const s = await liveStream('concurrent')
  const nodes = Array.from({ length: 8 }, (_, i) => `node-${i}`)
  const outcomes = await Promise.all(nodes.map((n, i) => apply(report(s.id, n, i + 1))))
  t.notOk(outcomes.includes('stale'), 'none refused')
  t.same(await counts(s.id), { viewers: 36, peak: 36 })
})

t.test('retention: viewer reports recorded before VIEWER_LEDGER_RETENTION_MS leave the ledger, in batches; lifecycle events and recent reports stay; 0 keeps all', async (t) => {
  const s = await service.create(ownerId, 'retention')
  const pub = published(s.id)
  t.equal(await apply(pub), 'applied')
  const old: StreamEvent[] = []
  for (let i = 0; i < 7; i++) old.push(report(s.id, 'node-a', i + 1))
  for (const e of old) await apply(e)
  const recent = report(s.id, 'node-a', 42)
  await apply(recent)
  // The old ones were recorded two days ago, the rest now.
  const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000)
  for (const e of [pub, ...old]) await db.update(streamEvents).set({ recordedAt: twoDaysAgo }).where(eq(streamEvents.eventId, e.id))
  const ids = async () => (await db.select().from(streamEvents).where(eq(streamEvents.streamId, s.id))).map((r) => r.eventId).sort()

  t.equal(await service.pruneViewerLedger(0), 0, 'retention 0: nothing deleted')
  t.equal((await ids()).length, 9)
  t.equal(await service.pruneViewerLedger(86_400_000, Date.now(), 3, 2), 6, 'at most maxBatches x batch rows per call')
  t.equal(await service.pruneViewerLedger(86_400_000, Date.now(), 3, 2), 1, 'the rest at the next')
  t.same(await ids(), [pub.id, recent.id].sort(), 'the publish (however old) and the recent report stay')
  t.equal(await apply(old[6] as StreamEvent), 'stale', 'an old report delivered again after its row went is still judged by its date')
  t.equal((await db.select().from(streams).where(eq(streams.id, s.id)))[0]?.viewerCount, 42)
})
