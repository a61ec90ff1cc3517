import t from 'tap'
import pino from 'pino'
import { eq } from 'drizzle-orm'
import { createDbClient, findStreamsByIds, streams, users } from '@livestream/db'
import { createTestDatabase } from '@livestream/db/testing'
import { recheckKeys } from '../src/key-recheck.js'

const tdb = await createTestDatabase('ls_recheck')
const client = createDbClient({ url: tdb.url })
t.teardown(async () => {
  await client.close()
  await tdb.drop()
})
const log = pino({ level: 'silent' })
const [u] = await client.db.insert(users).values({ email: 'r@example.com', displayName: 'R' })
let seq = 0
async function stream(status: 'pending' | 'live' | 'ended' = 'live') {
  const key = `00000000-0000-4000-8000-${String(++seq).padStart(12, '0')}`
  const [res] = await client.db.insert(streams).values({ refNo: `LS-R${seq}`, title: 't', streamKey: key, playbackId: `pbr${seq}`, userId: u.insertId, status })
  return { streamId: res.insertId, streamKey: key }
}

/** What this node holds (the part of LiveStreams the recheck reads), and what it ended. */
function node() {
  const held = new Map<number, string>()
  const ended: number[] = []
  const rotated: Array<[number, string]> = []
  return {
    held,
    ended,
    rotated,
    deps: (lookup = (ids: number[]) => findStreamsByIds(client.db, ids)) => ({
      held: () => [...held].map(([streamId, streamKey]) => ({ streamId, streamKey })),
      holds: (id: number, key: string) => held.get(id) === key,
      lookup,
      end: async (id: number) => {
        held.delete(id)
        ended.push(id)
      },
      rotated: (id: number, _old: string, key: string) => {
        held.set(id, key)
        rotated.push([id, key])
      },
      log
    })
  }
}

t.test('ended and deleted streams lose their publisher and end; rotated ones lose it and wait for the new key; healthy ones stay', async (t) => {
  const n = node()
  const healthy = await stream()
  const pending = await stream('pending')
  const ended = await stream()
  const rotated = await stream()
  const deleted = await stream()
  for (const s of [healthy, pending, ended, rotated, deleted]) n.held.set(s.streamId, s.streamKey)
  await client.db.update(streams).set({ status: 'ended' }).where(eq(streams.id, ended.streamId))
  await client.db.update(streams).set({ streamKey: '11111111-0000-4000-8000-000000000000' }).where(eq(streams.id, rotated.streamId))
  await client.db.delete(streams).where(eq(streams.id, deleted.streamId))
  t.same(await recheckKeys(n.deps()), { ended: 2, rotated: 1 })
  t.same(n.ended.sort(), [ended.streamId, deleted.streamId].sort(), 'ended and deleted streams end (key-revoked)')
  t.same(n.rotated, [[rotated.streamId, '11111111-0000-4000-8000-000000000000']], 'the rotated one is cut with its new key, not ended')
  t.same([...n.held.keys()].sort(), [healthy.streamId, pending.streamId, rotated.streamId].sort())
  t.same(await recheckKeys(n.deps()), { ended: 0, rotated: 0 }, 'the next pass finds the rotated stream valid under its new key')
})

t.test('a rotated stream ended through the api while it waits for the new key ends', async (t) => {
  const n = node()
  const s = await stream()
  n.held.set(s.streamId, s.streamKey)
  await client.db.update(streams).set({ streamKey: '33333333-0000-4000-8000-000000000000' }).where(eq(streams.id, s.streamId))
  t.same(await recheckKeys(n.deps()), { ended: 0, rotated: 1 })
  await client.db.update(streams).set({ status: 'ended' }).where(eq(streams.id, s.streamId))
  t.same(await recheckKeys(n.deps()), { ended: 1, rotated: 0 })
  t.same(n.ended, [s.streamId])
})

t.test('a publish accepted while the lookup is in flight is not taken for a missing stream', async (t) => {
  const n = node()
  const first = await stream()
  const late = await stream('pending')
  n.held.set(first.streamId, first.streamKey)
  const deps = n.deps(async (ids) => {
    const answer = findStreamsByIds(client.db, ids)
    n.held.set(late.streamId, late.streamKey) // accepted meanwhile: not in this lookup's answer
    return answer
  })
  t.same(await recheckKeys(deps), { ended: 0, rotated: 0 })
  t.same(n.ended, [])
  t.ok(n.held.has(late.streamId), 'the new publish keeps its stream')
  t.same(await recheckKeys(n.deps()), { ended: 0, rotated: 0 }, 'and the next pass, which sees it, keeps it too')
})

t.test('a stream ended or resumed under another key during the lookup is left to the next pass', async (t) => {
  const n = node()
  const a = await stream()
  const b = await stream()
  n.held.set(a.streamId, a.streamKey)
  n.held.set(b.streamId, b.streamKey)
  await client.db.update(streams).set({ status: 'ended' }).where(eq(streams.id, a.streamId))
  await client.db.update(streams).set({ streamKey: '22222222-0000-4000-8000-000000000000' }).where(eq(streams.id, b.streamId))
  const deps = n.deps(async (ids) => {
    const answer = await findStreamsByIds(client.db, ids)
    n.held.delete(a.streamId) // ended here meanwhile (publisher left, window passed)
    n.held.set(b.streamId, '22222222-0000-4000-8000-000000000000') // its broadcaster came back with the new key
    return answer
  })
  t.same(await recheckKeys(deps), { ended: 0, rotated: 0 })
  t.same(n.ended, [], 'nothing ended twice, nothing ended under a key it no longer has')
  t.same(await recheckKeys(n.deps()), { ended: 0, rotated: 0 }, 'the next pass finds the new key valid')
})

t.test('a node holding nothing asks nothing', async (t) => {
  const n = node()
  let asked = false
  t.same(await recheckKeys(n.deps(async () => ((asked = true), []))), { ended: 0, rotated: 0 })
  t.notOk(asked)
})
