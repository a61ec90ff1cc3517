import t from 'tap'
import { and, eq, isNull } from 'drizzle-orm'
import { createDbClient, streamEvents, streamParticipants, streams, users } from '@livestream/db'
import { createTestDatabase } from '@livestream/db/testing'
import { newEventId, type StreamEvent } from '@livestream/events'
import { handleStreamEvent } from '../../src/workers/stream-events-consumer.js'
import { createStreamsService, PublishNotAppliedError, ViewerNotJoinedError } from '../../src/plugins/app/streams/streams-service.js'

const tdb = await createTestDatabase('ls_apply')
const client = createDbClient({ url: tdb.url, multipleStatements: true })
t.teardown(async () => {
  await client.close()
  await tdb.drop()
})
const db = client.db
const service = createStreamsService(client)
const deps = { streams: service }
const applyStreamEvent = async (e: StreamEvent, d: typeof deps) => (await handleStreamEvent(e, d.streams)).outcome
const [u] = await db.insert(users).values({ email: 'o@example.com', displayName: 'Owner' })
const ownerId = u.insertId
const [v] = await db.insert(users).values({ email: 'v@example.com', displayName: 'Viewer' })
const viewerId = v.insertId

const base = (streamId: number, nodeId = 'node-a') => ({ nodeId, sessionId: 'sess-1', at: new Date().toISOString(), streamId })
const published = (streamId: number, nodeId = 'node-a'): StreamEvent => ({
  ...base(streamId, nodeId),
  type: 'stream.published',
  id: newEventId(),
  playbackBaseUrl: `http://${nodeId}:8000`
})
const unpublished = (streamId: number, nodeId = 'node-a'): StreamEvent => ({
  ...base(streamId, nodeId),
  type: 'stream.unpublished',
  id: newEventId(),
  reason: 'publisher-left'
})
const statusOf = async (id: number) => (await db.select().from(streams).where(eq(streams.id, id)))[0]!

t.test('published makes a stream live on its node with its playback base; unpublished ends it', async (t) => {
  const s = await service.create(ownerId, 'x')
  t.equal(await applyStreamEvent(published(s.id), deps), 'applied')
  const live = await statusOf(s.id)
  t.equal(live.status, 'live')
  t.equal(live.ingestNodeId, 'node-a')
  t.equal(live.playbackBaseUrl, 'http://node-a:8000')
  t.ok(live.startedAt)
  await service.join(s.id, viewerId)
  t.equal(await applyStreamEvent(unpublished(s.id), deps), 'applied')
  const ended = await statusOf(s.id)
  t.equal(ended.status, 'ended')
  t.equal(ended.endedReason, 'publisher-left')
  t.ok((await service.participant(s.id, viewerId)).leftAt, 'participants get left_at')
})

t.test('the same event twice changes nothing the second time and leaves one ledger row', async (t) => {
  const s = await service.create(ownerId, 'dup')
  const e = published(s.id)
  t.equal(await applyStreamEvent(e, deps), 'applied')
  t.equal(await applyStreamEvent(e, deps), 'duplicate')
  const rows = await db.select().from(streamEvents).where(eq(streamEvents.eventId, e.id))
  t.equal(rows.length, 1)
  t.equal(rows[0]!.outcome, 'applied')
})

t.test('concurrent deliveries of one event apply it once', async (t) => {
  const s = await service.create(ownerId, 'race')
  const e = published(s.id)
  const outcomes = await Promise.all(Array.from({ length: 8 }, () => applyStreamEvent(e, deps)))
  t.equal(outcomes.filter((o) => o === 'applied').length, 1)
  t.equal(outcomes.filter((o) => o === 'duplicate').length, 7)
})

t.test('a reconnect through another node moves playback; the old node cannot end the stream', async (t) => {
  const s = await service.create(ownerId, 'moved')
  await applyStreamEvent(published(s.id, 'node-a'), deps)
  t.equal(await applyStreamEvent(published(s.id, 'node-b'), deps), 'applied')
  t.equal((await statusOf(s.id)).playbackBaseUrl, 'http://node-b:8000')
  t.equal(await applyStreamEvent(unpublished(s.id, 'node-a'), deps), 'other-node')
  t.equal((await statusOf(s.id)).status, 'live')
  t.equal(await applyStreamEvent(unpublished(s.id, 'node-b'), deps), 'applied')
  t.equal((await statusOf(s.id)).status, 'ended')
})

t.test('viewer events with a user join and leave; anonymous ones are only recorded', async (t) => {
  const s = await service.create(ownerId, 'viewers')
  await applyStreamEvent(published(s.id), deps)
  const joined: StreamEvent = { ...base(s.id), type: 'viewer.joined', id: newEventId(), userId: viewerId }
  t.equal(await applyStreamEvent(joined, deps), 'applied')
  t.equal((await service.participant(s.id, viewerId)).role, 'viewer')
  const left: StreamEvent = { ...base(s.id), type: 'viewer.left', id: newEventId(), userId: viewerId }
  t.equal(await applyStreamEvent(left, deps), 'applied')
  t.ok((await service.participant(s.id, viewerId)).leftAt)
  const anon: StreamEvent = { ...base(s.id), type: 'viewer.joined', id: newEventId(), userId: null }
  t.equal(await applyStreamEvent(anon, deps), 'anonymous-viewer')
})

t.test('an event for a stream that does not exist is recorded, not retried forever', async (t) => {
  t.equal(await applyStreamEvent(published(987654), deps), 'unknown-stream')
})

t.test('times come from the events, to the millisecond', async (t) => {
  const s = await service.create(ownerId, 'times')
  const p = { ...published(s.id), at: '2026-01-02T03:04:05.678Z' }
  const u = { ...unpublished(s.id), at: '2026-01-02T04:05:06.789Z' }
  await applyStreamEvent(p, deps)
  await service.join(s.id, viewerId)
  await applyStreamEvent(u, deps)
  const row = await statusOf(s.id)
  t.equal(row.startedAt?.toISOString(), p.at)
  t.equal(row.endedAt?.toISOString(), u.at)
  t.equal((await service.participant(s.id, viewerId)).leftAt?.toISOString(), u.at)
})

t.test('viewer events follow the stream: the owner joins as host, an ended stream takes no one, a re-join reopens', async (t) => {
  const s = await service.create(ownerId, 'roles')
  await applyStreamEvent(published(s.id), deps)
  const join = (userId: number): StreamEvent => ({ ...base(s.id), type: 'viewer.joined', id: newEventId(), userId })
  const leave = (userId: number): StreamEvent => ({ ...base(s.id), type: 'viewer.left', id: newEventId(), userId })
  t.equal(await applyStreamEvent(join(ownerId), deps), 'applied')
  t.equal((await service.participant(s.id, ownerId)).role, 'host')
  t.equal(await applyStreamEvent(join(viewerId), deps), 'applied')
  t.equal(await applyStreamEvent(join(viewerId), deps), 'applied', 'a second join of someone present changes nothing')
  t.equal(await applyStreamEvent(leave(viewerId), deps), 'applied')
  t.equal(await applyStreamEvent(leave(viewerId), deps), 'stale', 'leaving twice')
  t.equal(await applyStreamEvent(join(viewerId), deps), 'applied')
  t.equal((await service.participant(s.id, viewerId)).leftAt, null, 're-join reopens the participation')
  await applyStreamEvent(unpublished(s.id), deps)
  const [other] = await db.insert(users).values({ email: `late-${s.id}@example.com`, displayName: 'Late' })
  t.equal(await applyStreamEvent(join(other.insertId), deps), 'stale')
  await t.rejects(service.participant(s.id, other.insertId), /not a participant/)
})

t.test('a leave delivered before its join fails (and is retried by the queue) without touching anything', async (t) => {
  const s = await service.create(ownerId, 'race')
  await applyStreamEvent(published(s.id), deps)
  const left: StreamEvent = { ...base(s.id), type: 'viewer.left', id: newEventId(), userId: viewerId }
  await t.rejects(applyStreamEvent(left, deps), ViewerNotJoinedError)
  const rows = await db.select().from(streamEvents).where(eq(streamEvents.eventId, left.id))
  t.equal(rows.length, 0, 'not in the ledger, so its retry is not a duplicate')
  t.equal(await applyStreamEvent({ ...base(s.id), type: 'viewer.joined', id: newEventId(), userId: viewerId }, deps), 'applied')
  t.equal(await applyStreamEvent(left, deps), 'applied')
})

t.test('an unpublish delivered before its publish fails (and is retried by the queue) without touching anything', async (t) => {
  const s = await service.create(ownerId, 'unpublish race')
  const pub = published(s.id)
  const unpub = unpublished(s.id)
  await t.rejects(applyStreamEvent(unpub, deps), PublishNotAppliedError)
  t.equal((await statusOf(s.id)).status, 'pending', 'the stream is not ended by an unpublish that overtook its publish')
  t.equal((await db.select().from(streamEvents).where(eq(streamEvents.eventId, unpub.id))).length, 0, 'not in the ledger, so its retry is not a duplicate')
  t.equal(await applyStreamEvent(pub, deps), 'applied', 'the publish then applies')
  t.equal(await applyStreamEvent(unpub, deps), 'applied', 'and the retried unpublish ends the stream')
  const row = await statusOf(s.id)
  t.equal(row.status, 'ended')
  t.ok(row.startedAt, 'it was live, its start recorded, before it ended')
  t.equal(await applyStreamEvent(unpublished(s.id), deps), 'stale', 'an unpublish of an ended stream changes nothing')
})

t.test('concurrent deliveries of one join, and of joins and an end racing on one stream, stay consistent', async (t) => {
  const s = await service.create(ownerId, 'join race')
  await applyStreamEvent(published(s.id), deps)
  const e: StreamEvent = { ...base(s.id), type: 'viewer.joined', id: newEventId(), userId: viewerId }
  const outcomes = await Promise.all(Array.from({ length: 8 }, () => applyStreamEvent(e, deps)))
  t.equal(outcomes.filter((o) => o === 'applied').length, 1)
  t.equal(outcomes.filter((o) => o === 'duplicate').length, 7)

  const viewers: number[] = []
  for (let i = 0; i < 10; i++) viewers.push((await db.insert(users).values({ email: `r${s.id}-${i}@example.com`, displayName: 'r' }))[0].insertId)
  const joins = viewers.map((userId): StreamEvent => ({ ...base(s.id), type: 'viewer.joined', id: newEventId(), userId }))
  const results = await Promise.all([...joins.slice(0, 5), unpublished(s.id), ...joins.slice(5)].map((ev) => applyStreamEvent(ev, deps)))
  t.ok(results.every((o) => o === 'applied' || o === 'stale'), results.join(','))
  const open = await db.select().from(streamParticipants).where(and(eq(streamParticipants.streamId, s.id), isNull(streamParticipants.leftAt)))
  t.equal(open.length, 0, 'no one is left inside an ended stream')
})

t.test('a join made while the stream was live but delivered after its end is recorded, closed at the end', async (t) => {
  const s = await service.create(ownerId, 'late join')
  await applyStreamEvent(published(s.id), deps)
  const joinedAt = new Date(Date.now() - 1_000).toISOString()
  const join: StreamEvent = { ...base(s.id), at: joinedAt, type: 'viewer.joined', id: newEventId(), userId: viewerId }
  const end = unpublished(s.id)
  t.equal(await applyStreamEvent(end, deps), 'applied')
  t.equal(await applyStreamEvent(join, deps), 'applied', 'the join happened before the end')
  const p = await service.participant(s.id, viewerId)
  t.equal(p.joinedAt.toISOString(), joinedAt, 'joined when the event says')
  t.equal(p.leftAt?.toISOString(), end.at, 'left when the stream ended')
  const leave: StreamEvent = { ...base(s.id), type: 'viewer.left', id: newEventId(), userId: viewerId }
  t.equal(await applyStreamEvent(leave, deps), 'stale', 'its leave, delivered later still, finds it closed')
  t.equal(await applyStreamEvent({ ...join, id: newEventId(), at: new Date(Date.now() + 1_000).toISOString() }, deps), 'stale', 'a join after the end is not')
})

t.test('events move updated_at: a publish and an unpublish each change it', async (t) => {
  const s = await service.create(ownerId, 'timestamps')
  const old = new Date('2000-01-01T00:00:00.000Z')
  await client.pool.query('UPDATE streams SET updated_at = ? WHERE id = ?', [old, s.id])
  await applyStreamEvent(published(s.id), deps)
  t.ok((await statusOf(s.id)).updatedAt > old, 'a publish moves it')
  await client.pool.query('UPDATE streams SET updated_at = ? WHERE id = ?', [old, s.id])
  await applyStreamEvent(unpublished(s.id), deps)
  t.ok((await statusOf(s.id)).updatedAt > old, 'an unpublish moves it')
})

t.test('an applied event costs one MySQL round trip, a duplicate two (its rollback)', async (t) => {
  const counted = createDbClient({ url: tdb.url, multipleStatements: true })
  t.teardown(() => counted.close())
  let trips = 0
  type Queryable = { query: (...args: never[]) => Promise<unknown>; execute: (...args: never[]) => Promise<unknown> }
  const count = <T extends Queryable>(target: T): T => {
    for (const name of ['query', 'execute'] as const) {
      const original = target[name].bind(target)
      target[name] = ((...args: never[]) => {
        trips++
        return original(...args)
      }) as T[typeof name]
    }
    return target
  }
  count(counted.pool as unknown as Queryable)
  const getConnection = counted.pool.getConnection.bind(counted.pool)
  counted.pool.getConnection = async () => count((await getConnection()) as unknown as Queryable) as never
  const svc = createStreamsService(counted)
  const tripsOf = async (e: StreamEvent) => {
    trips = 0
    const outcome = (await handleStreamEvent(e, svc)).outcome
    return { outcome, trips }
  }
  const s = await service.create(ownerId, 'round trips')
  const pub = published(s.id)
  const joined = (): StreamEvent => ({ ...base(s.id), type: 'viewer.joined', id: newEventId(), userId: viewerId })
  const left = (): StreamEvent => ({ ...base(s.id), type: 'viewer.left', id: newEventId(), userId: viewerId })
  const anonymous = (): StreamEvent => ({ ...base(s.id), type: 'viewer.joined', id: newEventId(), userId: null })
  t.same(await tripsOf(pub), { outcome: 'applied', trips: 1 }, 'published')
  t.same(await tripsOf(joined()), { outcome: 'applied', trips: 1 }, 'viewer joined')
  t.same(await tripsOf(left()), { outcome: 'applied', trips: 1 }, 'viewer left')
  t.same(await tripsOf(anonymous()), { outcome: 'anonymous-viewer', trips: 1 }, 'anonymous viewer')
  t.same(await tripsOf(unpublished(s.id)), { outcome: 'applied', trips: 1 }, 'unpublished')
  t.same(await tripsOf(pub), { outcome: 'duplicate', trips: 2 }, 'a duplicate')
})
