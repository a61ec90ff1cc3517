import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { createDbClient, users } from '@livestream/db'
import { createTestDatabase } from '@livestream/db/testing'
import { newEventId, type StreamEvent } from '@livestream/events'
import { createStreamsService } from '../src/plugins/app/streams/streams-service.js'
import { createPlatformEvents, type PlatformEvent } from '../src/plugins/app/platform-events.js'

const tdb = await createTestDatabase('ls_outbox')
const client = createDbClient({ url: tdb.url, multipleStatements: true })
t.teardown(async () => {
  await client.close()
  await tdb.drop()
})
const urls = { streamServerUrl: 'https://media.example.com', rtmpPublicUrl: 'rtmp://ingest.example.com:1935' }
const [o] = await client.db.insert(users).values({ email: 'o@example.com', displayName: 'Owner' })
const ownerId = o.insertId
const [v] = await client.db.insert(users).values({ email: 'v@example.com', displayName: 'Viewer' })
const viewerId = v.insertId

const quietLog = { warn() {}, error() {} }

/** Platform events whose sink records what it took, and fails while `down` says so. */
function sinks(opts: { down?: () => boolean; delayMs?: number } = {}) {
  const events = createPlatformEvents(quietLog as never)
  const heard: PlatformEvent[] = []
  events.subscribe(async (e) => {
    if (opts.delayMs) await sleep(opts.delayMs)
    if (opts.down?.()) throw new Error('redis is not connected')
    heard.push(e)
  })
  return { events, heard }
}

const owed = async (streamId?: number) => {
  const [rows] = await client.pool.query(
    `SELECT event_id AS eventId, type, attempts FROM platform_event_outbox ${streamId === undefined ? '' : 'WHERE stream_id = ?'} ORDER BY created_at, event_id`,
    streamId === undefined ? [] : [streamId]
  )
  return rows as Array<{ eventId: string; type: string; attempts: number }>
}
/** Polls `check` (a relay's claim is seen from another connection). */
async function until(what: string, check: () => Promise<boolean>) {
  for (let i = 0; i < 200; i++) {
    if (await check()) return
    await sleep(10)
  }
  throw new Error(`timed out waiting for ${what}`)
}
const ingest = (streamId: number, type: StreamEvent['type'], extra: Record<string, unknown> = {}) =>
  ({ type, id: newEventId(), nodeId: 'node-a', sessionId: 'sess-1', at: new Date().toISOString(), streamId, ...extra }) as StreamEvent

t.test('a change whose sinks all took its event leaves no outbox row', async (t) => {
  const { events, heard } = sinks()
  const svc = createStreamsService(client, { events, urls })
  const s = await svc.create(ownerId, 'Clean')
  await svc.transition(s.id, 'live', { actorUserId: ownerId })
  await svc.join(s.id, viewerId)
  await svc.leave(s.id, viewerId)
  await svc.applyEvent(ingest(s.id, 'viewer.joined', { userId: viewerId }))
  await svc.rotateKey(ownerId, s.id)
  await svc.transition(s.id, 'ended', { actorUserId: ownerId })
  t.same(
    heard.map((e) => e.type),
    ['stream.created', 'stream.live', 'participant.joined', 'participant.left', 'participant.joined', 'stream.key_rotated', 'stream.ended']
  )
  t.same(await owed(s.id), [], 'every row deleted before the change answered')
})

t.test('a change whose sink failed keeps its outbox row; the relay emits it later under the same id, then deletes it', async (t) => {
  let down = false
  const { events, heard } = sinks({ down: () => down })
  const svc = createStreamsService(client, { events, urls })
  const s = await svc.create(ownerId, 'Redis away')
  heard.length = 0
  down = true
  const { stream } = await svc.transition(s.id, 'ended', { actorUserId: ownerId })
  t.equal(stream.status, 'ended', 'the change itself succeeds')
  t.equal(heard.length, 0)
  const [row] = await owed(s.id)
  t.match(row, { type: 'stream.ended', attempts: 0 })

  t.same(await svc.relayOutbox({ afterMs: 60_000 }), { emitted: 0, failed: 0, dropped: 0 }, 'a young row is left to its own process')
  t.same(await svc.relayOutbox({ afterMs: 0 }), { emitted: 0, failed: 1, dropped: 0 }, 'sinks still down')
  t.match(await owed(s.id), [{ eventId: row!.eventId, attempts: 1 }])

  down = false
  t.same(await svc.relayOutbox({ afterMs: 0 }), { emitted: 1, failed: 0, dropped: 0 })
  t.equal(heard.length, 1)
  const e = heard[0]!
  t.equal(e.id, row!.eventId, 'the same id as the failed emission: receivers drop a copy')
  t.equal(e.type, 'stream.ended')
  t.equal(e.data.reason, 'ended-by-owner')
  t.equal(e.data.stream.status, 'ended')
  t.equal(e.timestamp, stream.endedAt!.toISOString(), 'when the change happened, not when it was relayed')
  t.same(await owed(s.id), [], 'deleted once emitted')
  t.same(await svc.relayOutbox({ afterMs: 0 }), { emitted: 0, failed: 0, dropped: 0 }, 'and never again')
})

t.test('changes committed by a process that died before announcing are relayed in order, from the current rows', async (t) => {
  // A service with no sinks commits like any other, and never emits: as a process killed right after COMMIT.
  const dead = createStreamsService(client, { urls })
  const s = await dead.create(ownerId, 'Orphaned')
  await dead.transition(s.id, 'live', { actorUserId: ownerId })
  const join = ingest(s.id, 'viewer.joined', { userId: viewerId })
  t.equal(await dead.applyEvent(join), 'applied')
  await dead.join(s.id, ownerId)
  t.same((await owed(s.id)).map((r) => r.type), ['stream.created', 'stream.live', 'participant.joined', 'participant.joined'])

  const { events, heard } = sinks()
  const svc = createStreamsService(client, { events, urls })
  t.equal(await svc.applyEvent(join), 'duplicate', 'a redelivery finds its ledger row and announces nothing itself')
  t.equal(heard.length, 0)
  t.same(await svc.relayOutbox({ afterMs: 0 }), { emitted: 4, failed: 0, dropped: 0 })
  t.same(
    heard.map((e) => [e.type, e.data.participant?.user_id ?? null]),
    [
      ['stream.created', null],
      ['stream.live', null],
      ['participant.joined', viewerId],
      ['participant.joined', ownerId]
    ]
  )
  t.equal(heard[2]!.id, `evt_${join.id}`, 'an ingest-caused event keeps the id derived from its event')
  t.equal(heard[2]!.timestamp, join.at)
  t.equal(heard[3]!.data.participant?.role, 'host')
  t.ok(heard.every((e) => e.data.stream.status === 'live'), 'the data is the stream as it is now')
  t.same(await owed(s.id), [])
})

t.test('two relays at once emit each row once (SELECT ... FOR UPDATE SKIP LOCKED)', async (t) => {
  const dead = createStreamsService(client, { urls })
  const ids: number[] = []
  for (let i = 0; i < 12; i++) {
    const s = await dead.create(ownerId, `Backlog ${i}`)
    await dead.rotateKey(ownerId, s.id)
    ids.push(s.id)
  }
  const rows = (await owed()).length
  t.ok(rows >= 24, `${rows} rows owed`)
  // Two "processes": their own pools; slow sinks, so that each holds its claim while the other looks.
  const other = createDbClient({ url: tdb.url, multipleStatements: true })
  t.teardown(() => other.close())
  const a = sinks({ delayMs: 5 })
  const b = sinks({ delayMs: 5 })
  const relayA = createStreamsService(client, { events: a.events, urls })
  const relayB = createStreamsService(other, { events: b.events, urls })
  const [ra, rb] = await Promise.all([relayA.relayOutbox({ afterMs: 0, batch: 4 }), relayB.relayOutbox({ afterMs: 0, batch: 4 })])
  t.equal(ra.emitted + rb.emitted, rows, 'every row emitted')
  t.ok(ra.emitted > 0 && rb.emitted > 0, `both relays took a share (${ra.emitted} + ${rb.emitted})`)
  const all = [...a.heard, ...b.heard].map((e) => e.id)
  t.equal(new Set(all).size, all.length, 'no event emitted twice')
  t.same(await owed(), [])
})

t.test('with the sinks down, a relay round stops after three failures in a row instead of trying every row', async (t) => {
  const dead = createStreamsService(client, { urls })
  const ids: number[] = []
  for (let i = 0; i < 5; i++) ids.push((await dead.create(ownerId, `While down ${i}`)).id)
  const down = sinks({ down: () => true })
  const svc = createStreamsService(client, { events: down.events, urls })
  t.same(await svc.relayOutbox({ afterMs: 0 }), { emitted: 0, failed: 3, dropped: 0 })
  const [rows] = await client.pool.query('SELECT attempts FROM platform_event_outbox WHERE stream_id IN (?) ORDER BY created_at, event_id', [ids])
  t.same((rows as Array<{ attempts: number }>).map((r) => r.attempts), [1, 1, 1, 0, 0], 'the first three tried, the rest left for the next round')
  const up = sinks()
  t.match(await createStreamsService(client, { events: up.events, urls }).relayOutbox({ afterMs: 0 }), { emitted: 5, failed: 0 })
})

t.test('a row the relay could not pass on for a day is dropped, with an error', async (t) => {
  const errors: unknown[] = []
  const events = createPlatformEvents(quietLog as never)
  const heard: PlatformEvent[] = []
  events.subscribe((e) => void heard.push(e))
  const svc = createStreamsService(client, { events, urls, log: { warn() {}, error: (...args: unknown[]) => void errors.push(args) } as never })
  const dead = createStreamsService(client, { urls })
  const s = await dead.create(ownerId, 'Forgotten')
  await client.pool.query('UPDATE platform_event_outbox SET created_at = NOW(3) - INTERVAL 2 DAY WHERE stream_id = ?', [s.id])
  t.same(await svc.relayOutbox({ afterMs: 0 }), { emitted: 0, failed: 0, dropped: 1 })
  t.equal(heard.length, 0)
  t.equal(errors.length, 1)
  t.same(await owed(s.id), [])
})

t.test('a change commits at once while a relay holds its claim (READ COMMITTED: no gap lock at the end of the index)', async (t) => {
  const dead = createStreamsService(client, { urls })
  const first = await dead.create(ownerId, 'Claimed')
  const slow = sinks({ delayMs: 1_000 })
  const relay = createStreamsService(client, { events: slow.events, urls })
  const relaying = relay.relayOutbox({ afterMs: 0 })
  await until('the relay to hold its claim', async () => {
    const [rows] = await client.pool.query('SELECT event_id FROM platform_event_outbox WHERE stream_id = ? FOR UPDATE SKIP LOCKED', [first.id])
    return (rows as unknown[]).length === 0
  })
  const started = Date.now()
  const s = await dead.create(ownerId, 'Not held up')
  await dead.transition(s.id, 'live', { actorUserId: ownerId })
  t.ok(Date.now() - started < 500, `committed in ${Date.now() - started} ms`)
  t.match(await relaying, { emitted: 1 })
})

t.test('deletes after emission go in batches while one is in flight, and each caller resolves once its row is gone', async (t) => {
  const { createOutboxStore } = await import('../src/plugins/app/streams/event-outbox.js')
  const s = await createStreamsService(client, { urls }).create(ownerId, 'Batched deletes')
  const ids = Array.from({ length: 40 }, (_, i) => `evt_batch_${i}_${s.id}`)
  await client.pool.query(
    `INSERT INTO platform_event_outbox (event_id, type, stream_id, participant_user_id, reason, occurred_at) VALUES ${ids.map(() => "(?, 'stream.live', ?, NULL, NULL, NOW(3))").join(', ')}`,
    ids.flatMap((id) => [id, s.id])
  )
  // Count the round trips the deletes take: the pool's queries, seen from a wrapper.
  let trips = 0
  const pool = new Proxy(client.pool, {
    get(target, prop, receiver) {
      if (prop === 'query') return (...args: unknown[]) => (trips++, (target.query as (...a: unknown[]) => unknown)(...args))
      if (prop === 'getConnection') {
        return async () => {
          const conn = await target.getConnection()
          return new Proxy(conn, {
            get(c, p) {
              if (p === 'query') return (...args: unknown[]) => (trips++, (c.query as (...a: unknown[]) => unknown).apply(c, args))
              const v = Reflect.get(c, p) as unknown
              return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(c) : v
            }
          })
        }
      }
      const v = Reflect.get(target, prop, receiver) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    }
  })
  const outbox = createOutboxStore(pool as never)
  const gone = await Promise.all(
    ids.map(async (id) => {
      await outbox.delete(id)
      const [rows] = await client.pool.query('SELECT 1 FROM platform_event_outbox WHERE event_id = ?', [id])
      return (rows as unknown[]).length === 0
    })
  )
  t.ok(gone.every(Boolean), 'every caller found its row gone when its delete resolved')
  t.same((await owed(s.id)).filter((r) => r.eventId.startsWith('evt_batch_')), [], 'none of the 40 rows left')
  t.ok(trips >= 2 && trips <= 4, `40 deletes asked at once took ${trips} round trips: the first alone, the rest together`)
  // A failure reaches every caller of the batch (each logs it; the relay emits those entries again later).
  const broken = createOutboxStore({ query: async () => Promise.reject(new Error('connection lost')), getConnection: async () => Promise.reject(new Error('connection lost')) } as never)
  const results = await Promise.allSettled([broken.delete('a'), broken.delete('b'), broken.delete('c')])
  t.same(results.map((r) => r.status), ['rejected', 'rejected', 'rejected'])
  t.match((results[1] as PromiseRejectedResult).reason, /connection lost/)
})
