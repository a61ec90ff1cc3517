import t from 'tap'
import { createDbClient, users } from '@livestream/db'
import { createTestDatabase } from '@livestream/db/testing'
import { newEventId, type StreamEvent } from '@livestream/events'
import { createStreamsService } from '../src/plugins/app/streams/streams-service.js'
import { createPlatformEvents, type PlatformEvent } from '../src/plugins/app/platform-events.js'

const tdb = await createTestDatabase('ls_pevents')
const client = createDbClient({ url: tdb.url, multipleStatements: true })
t.teardown(async () => {
  await client.close()
  await tdb.drop()
})
const warnings: unknown[] = []
const events = createPlatformEvents({ warn: (...args: unknown[]) => void warnings.push(args) } as never)
const heard: PlatformEvent[] = []
events.subscribe((e) => void heard.push(e))
const urls = { streamServerUrl: 'https://media.example.com', rtmpPublicUrl: 'rtmp://ingest.example.com:1935' }
const service = createStreamsService(client, { events, urls })

const [o] = await client.db.insert(users).values({ email: 'o@example.com', displayName: 'Owner' })
const ownerId = o.insertId
const [v] = await client.db.insert(users).values({ email: 'v@example.com', displayName: 'Viewer' })
const viewerId = v.insertId

const ingest = (streamId: number, type: StreamEvent['type'], extra: Record<string, unknown> = {}, nodeId = 'node-a') =>
  ({ type, id: newEventId(), nodeId, sessionId: 'sess-1', at: new Date().toISOString(), streamId, ...extra }) as StreamEvent
const since = (n: number) => heard.slice(n)

t.test('every change of a stream made through the routes is announced once, after it committed', async (t) => {
  const n = heard.length
  const s = await service.create(ownerId, 'A show')
  await service.transition(s.id, 'live', { actorUserId: ownerId })
  await service.rotateKey(ownerId, s.id)
  await service.join(s.id, viewerId)
  await service.join(s.id, viewerId) // already in: no second announcement
  await service.leave(s.id, viewerId)
  await service.transition(s.id, 'ended', { actorUserId: ownerId })
  await service.transition(s.id, 'ended', { actorUserId: ownerId, lenient: true }) // nothing changes: nothing announced
  const got = since(n)
  t.same(
    got.map((e) => e.type),
    ['stream.created', 'stream.live', 'stream.key_rotated', 'participant.joined', 'participant.left', 'stream.ended']
  )
  t.ok(got.every((e) => e.streamId === s.id && e.ownerId === ownerId))
  t.equal(new Set(got.map((e) => e.id)).size, got.length, 'each change has its own id')
  t.equal(got[1]!.data.stream.status, 'live', 'the view announced is the state after the change')
  t.equal(got[3]!.data.participant?.user_id, viewerId)
  t.equal(got[3]!.data.participant?.role, 'viewer')
  // The participation as it was read with the stream, in one query: every field of the view.
  const joined = await service.participant(s.id, viewerId)
  t.same(got[3]!.data.participant, { ...got[4]!.data.participant, left_at: null }, 'join and leave name the same participation')
  t.match(got[3]!.data.participant, { id: joined.id, stream_id: s.id, display_name: 'Viewer', joined_at: joined.joinedAt.toISOString() })
  t.equal(got[4]!.data.participant?.left_at, joined.leftAt?.toISOString(), 'the leave carries its left_at')
  t.not(got[4]!.data.participant?.left_at, null)
  t.equal(got[5]!.data.reason, 'ended-by-owner')
  t.equal(got[5]!.data.stream.playback_url, `https://media.example.com/hls/${s.playbackId}/index.m3u8`)
})

t.test('no announcement ever carries a stream key, old or new', async (t) => {
  const s = await service.create(ownerId, 'Keys')
  const rotated = await service.rotateKey(ownerId, s.id)
  const text = JSON.stringify(heard)
  t.notOk(text.includes(s.streamKey), 'the first key')
  t.notOk(text.includes(rotated.streamKey), 'the rotated key')
  t.notOk(text.includes('stream_key'), 'no key field at all')
})

t.test('an ingest event is announced with an id derived from its own, and a redelivery announces nothing', async (t) => {
  const s = await service.create(ownerId, 'From ingest')
  const n = heard.length
  const pub = ingest(s.id, 'stream.published', { playbackBaseUrl: 'http://node-a:8000' })
  t.equal(await service.applyEvent(pub), 'applied')
  t.equal(await service.applyEvent(pub), 'duplicate')
  const got = since(n)
  t.same(got.map((e) => e.type), ['stream.live'])
  t.equal(got[0]!.id, `evt_${pub.id}`)
  t.equal(got[0]!.timestamp, pub.at)
  t.equal(got[0]!.data.stream.connection, 'connected')
})

t.test('an applied ingest event whose process never announced it is relayed from the outbox under its id; a stale one never is', async (t) => {
  // The first delivery's process died between its commit and its announcement: its outbox row outlives it.
  const quiet = createStreamsService(client, { urls })
  const s = await service.create(ownerId, 'Crash between commit and announce')
  const pub = ingest(s.id, 'stream.published', { playbackBaseUrl: 'http://node-a:8000' })
  t.equal(await quiet.applyEvent(pub), 'applied', 'applied by a process whose announcement never happened')
  const n = heard.length
  t.equal(await service.applyEvent(pub), 'duplicate')
  t.equal(heard.length, n, 'the redelivery announces nothing: the outbox row is what is owed')
  await service.relayOutbox({ afterMs: 0 })
  const relayed = since(n).filter((e) => e.streamId === s.id)
  t.same(relayed.map((e) => [e.type, e.id, e.timestamp]), [['stream.live', `evt_${pub.id}`, pub.at]])
  // A stale event (here: a publish of an ended stream) writes no outbox row: nothing is relayed for it.
  await service.transition(s.id, 'ended', { actorUserId: ownerId })
  const late = ingest(s.id, 'stream.published', { playbackBaseUrl: 'http://node-a:8000' })
  t.equal(await quiet.applyEvent(late), 'stale')
  const [owed] = await client.pool.query('SELECT event_id FROM platform_event_outbox WHERE event_id = ?', [`evt_${late.id}`])
  t.same(owed, [])
})

t.test('a publisher dropping and coming back shows as reconnecting, then connected, and an older report changes nothing', async (t) => {
  const s = await service.create(ownerId, 'Flaky uplink')
  await service.applyEvent(ingest(s.id, 'stream.published', { playbackBaseUrl: 'http://node-a:8000' }))
  const n = heard.length
  const dropped = ingest(s.id, 'stream.reconnecting')
  t.equal(await service.applyEvent(dropped), 'applied')
  t.equal((await service.getById(s.id)).stream.connection, 'reconnecting')
  const back = ingest(s.id, 'stream.resumed')
  t.equal(await service.applyEvent(back), 'applied')
  t.equal((await service.getById(s.id)).stream.connection, 'connected')
  // Delivered late: a drop reported before the return must not show the stream reconnecting again.
  const late = { ...ingest(s.id, 'stream.reconnecting'), at: new Date(Date.parse(back.at) - 1_000).toISOString() } as StreamEvent
  t.equal(await service.applyEvent(late), 'stale')
  t.equal((await service.getById(s.id)).stream.connection, 'connected')
  // Another node's news about a stream it does not hold is not applied.
  t.equal(await service.applyEvent(ingest(s.id, 'stream.reconnecting', {}, 'node-b')), 'other-node')
  t.same(
    since(n).map((e) => [e.type, e.data.stream.connection]),
    [
      ['stream.reconnecting', 'reconnecting'],
      ['stream.live', 'connected']
    ]
  )
})

t.test('a reconnect that lands on another node moves the stream and shows it connected there', async (t) => {
  const s = await service.create(ownerId, 'Moving')
  await service.applyEvent(ingest(s.id, 'stream.published', { playbackBaseUrl: 'http://node-a:8000' }))
  await service.applyEvent(ingest(s.id, 'stream.reconnecting'))
  t.equal(await service.applyEvent(ingest(s.id, 'stream.published', { playbackBaseUrl: 'http://node-b:8000' }, 'node-b')), 'applied')
  const { stream } = await service.getById(s.id)
  t.equal(stream.ingestNodeId, 'node-b')
  t.equal(stream.connection, 'connected')
  t.equal(await service.applyEvent(ingest(s.id, 'stream.unpublished', { reason: 'publisher-left' })), 'other-node', "the old node's end is stale")
})

t.test('a sink that fails is logged and does not fail the change or the other sinks', async (t) => {
  const local = createPlatformEvents({ warn: (...args: unknown[]) => void warnings.push(args) } as never)
  const got: string[] = []
  local.subscribe(() => {
    throw new Error('sink down')
  })
  local.subscribe((e) => void got.push(e.type))
  const svc = createStreamsService(client, { events: local, urls })
  const before = warnings.length
  const s = await svc.create(ownerId, 'Resilient')
  t.equal(s.title, 'Resilient')
  t.same(got, ['stream.created'])
  t.equal(warnings.length, before + 1)
  const [owed] = await client.pool.query('SELECT type FROM platform_event_outbox WHERE stream_id = ?', [s.id])
  t.same(owed, [{ type: 'stream.created' }], 'its outbox row stays, for the relay')
})
