import t from 'tap'
import { eq } from 'drizzle-orm'
import { Redis } from 'ioredis'
import { createDbClient, streams, users } from '@livestream/db'
import { createTestDatabase } from '@livestream/db/testing'
import { heartbeatKey, type NodeHeartbeat } from '@livestream/events'
import { dropTestPrefix, testQueuePrefix } from '@livestream/events/testing'
import { HEARTBEAT_FORGET_MS, reapLostStreams } from '../../src/workers/lost-streams-reaper.js'
import { createStreamsService } from '../../src/plugins/app/streams/streams-service.js'

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
  await liveOn('restarted', new Date(Date.now() - 10_000))
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

t.test('a node never heard from loses its streams once the timeout has passed since they went live', async (t) => {
  const old = await liveOn('ghost', new Date(Date.now() - 60_000))
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
