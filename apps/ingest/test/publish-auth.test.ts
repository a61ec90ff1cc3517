import t from 'tap'
import pino from 'pino'
import { createDbClient, findStreamByKey, streams, users, type Database, type PublishTarget } from '@livestream/db'
import { createTestDatabase } from '@livestream/db/testing'
import { eq } from 'drizzle-orm'
import { keyFingerprint, PublishAuth, type PublishAuthOptions } from '../src/publish-auth.js'
import { capturedLogger } from './helper.js'

const tdb = await createTestDatabase('ls_pauth')
const client = createDbClient({ url: tdb.url })
t.teardown(async () => {
  await client.close()
  await tdb.drop()
})
const [u] = await client.db.insert(users).values({ email: 'a@example.com', displayName: 'A' })
const KEY = '3b241101-e2bb-4255-8caf-4136c566a962'
await client.db.insert(streams).values({ refNo: 'LS-1', title: 't', streamKey: KEY, playbackId: 'pb1', userId: u.insertId })
const log = pino({ level: 'silent' })
const wrong = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`

function auth(opts: Partial<PublishAuthOptions> & { db?: Database } = {}) {
  const db = opts.db ?? client.db
  return new PublishAuth({ lookup: (key) => findStreamByKey(db, key), cacheMs: 0, failLimit: 100, slowdownMaxMs: 3_000, log, ...opts })
}

/** A lookup that counts how many run at once. */
function countingLookup() {
  const seen = { now: 0, max: 0, calls: 0 }
  const lookup = async (key: string): Promise<PublishTarget | null> => {
    seen.calls++
    seen.max = Math.max(seen.max, ++seen.now)
    try {
      await new Promise((r) => setTimeout(r, 20))
      return await findStreamByKey(client.db, key)
    } finally {
      seen.now--
    }
  }
  return { seen, lookup }
}

t.test('a known key of a pending stream is accepted; unknown, malformed and ended keys are refused', async (t) => {
  const a = auth()
  const ok = await a.authorize(KEY, '10.0.0.1')
  t.ok(ok.ok)
  t.same(await a.authorize(wrong(0), '10.0.0.1'), { ok: false, reason: 'unknown' })
  t.same(await a.authorize('../../etc', '10.0.0.1'), { ok: false, reason: 'malformed' })
  t.same(await a.authorize('x'.repeat(10_000), '10.0.0.1'), { ok: false, reason: 'malformed' })
  await client.db.update(streams).set({ status: 'ended' }).where(eq(streams.streamKey, KEY))
  t.same(await a.authorize(KEY, '10.0.0.1'), { ok: false, reason: 'ended' })
  await client.db.update(streams).set({ status: 'pending' }).where(eq(streams.streamKey, KEY))
})

t.test('answers are cached for the configured time, misses included', async (t) => {
  const a = auth({ cacheMs: 60_000 })
  t.ok((await a.authorize(KEY, '10.0.0.2')).ok)
  await client.db.update(streams).set({ status: 'ended' }).where(eq(streams.streamKey, KEY))
  t.ok((await a.authorize(KEY, '10.0.0.2')).ok, 'served from the cache')
  a.forget(KEY)
  t.notOk((await a.authorize(KEY, '10.0.0.2')).ok, 'forgotten: read again')
  await client.db.update(streams).set({ status: 'pending' }).where(eq(streams.streamKey, KEY))
})

t.test('an address over the failure limit is slowed down, not locked out: a valid key is still accepted', async (t) => {
  const a = auth({ failLimit: 3, slowdownMaxMs: 2_000 })
  for (let i = 0; i < 3; i++) await a.authorize(wrong(i), '10.0.0.9')
  const started = Date.now()
  const v = await a.authorize(KEY, '10.0.0.9')
  const took = Date.now() - started
  t.ok(v.ok, 'the right key, pasted after the failures, gets in')
  t.ok(took >= 200, `after a delay (${took} ms)`)
  t.ok(took < 2_000, 'no longer than the cap')
  t.equal(a.stats.throttled, 1, 'counted as slowed down')
  const other = Date.now()
  t.ok((await a.authorize(KEY, '10.0.0.10')).ok, 'other addresses are unaffected')
  t.ok(Date.now() - other < 200, 'and answered at once')
})

t.test('wrong keys from an address over the limit are answered slowly, more slowly each time, up to the cap', async (t) => {
  const a = auth({ failLimit: 2, slowdownMaxMs: 600 })
  for (let i = 0; i < 2; i++) await a.authorize(wrong(i), '10.0.1.1')
  const delays: number[] = []
  for (let i = 2; i < 6; i++) {
    const started = Date.now()
    t.same(await a.authorize(wrong(i), '10.0.1.1'), { ok: false, reason: 'unknown' }, 'still looked up, still refused')
    delays.push(Date.now() - started)
  }
  t.comment(`delays: ${delays.join(', ')} ms`)
  t.ok(delays[0]! >= 230, 'the first is delayed')
  t.ok(delays[1]! >= 480, 'the next longer')
  t.ok(delays[2]! >= 580 && delays[2]! < 1_200, 'capped')
  t.ok(delays[3]! >= 580 && delays[3]! < 1_200, 'and stays at the cap')
})

t.test('a throttled address gets one verdict at a time: a burst of guesses is serialised, each one delayed', async (t) => {
  const { seen, lookup } = countingLookup()
  const a = auth({ lookup, failLimit: 2, slowdownMaxMs: 300 })
  for (let i = 0; i < 2; i++) await a.authorize(wrong(i), '10.0.2.1')
  seen.max = 0
  const started = Date.now()
  const verdicts = await Promise.all(Array.from({ length: 4 }, (_, i) => a.authorize(wrong(10 + i), '10.0.2.1')))
  const took = Date.now() - started
  t.ok(verdicts.every((v) => !v.ok), 'all refused')
  t.equal(seen.max, 1, 'never more than one lookup in flight for the address')
  t.ok(took >= 250 + 300 * 3, `the four took the sum of their delays (${took} ms)`)
})

t.test('a burst from a fresh address cannot run more lookups at once than the failure limit', async (t) => {
  const { seen, lookup } = countingLookup()
  const a = auth({ lookup, failLimit: 3, slowdownMaxMs: 50 })
  const verdicts = await Promise.all(Array.from({ length: 12 }, (_, i) => a.authorize(wrong(100 + i), '10.0.3.1')))
  t.ok(verdicts.every((v) => !v.ok))
  t.ok(seen.max <= 4, `at most the limit in flight, plus the one whose turn it is (saw ${seen.max})`)
  t.equal(verdicts.filter((v) => !v.ok && v.reason === 'unknown').length, 12, 'every one was looked up: none refused unseen')
})

t.test('a guessing flood from one address does not lock out a valid key from that address', async (t) => {
  const { seen, lookup } = countingLookup()
  const a = auth({ lookup, failLimit: 2, slowdownMaxMs: 300 })
  for (let i = 0; i < 2; i++) await a.authorize(wrong(i), '10.0.4.1')
  // Far more guesses than the address's line holds, all waiting when the right key arrives.
  const flood = Promise.all(Array.from({ length: 30 }, (_, i) => a.authorize(wrong(200 + i), '10.0.4.1')))
  const started = Date.now()
  const valid = await a.authorize(KEY, '10.0.4.1')
  const took = Date.now() - started
  t.ok(valid.ok, `the valid key gets in (${JSON.stringify(valid)})`)
  t.ok(took >= 250, `after the capped delay (${took} ms), not at once`)
  t.ok(took < 3_000, 'and not behind the whole flood')
  const verdicts = await flood
  t.ok(verdicts.every((v) => !v.ok && v.reason === 'unknown'), 'every guess was looked up and refused as unknown')
  t.comment(`lookups at once, at most: ${seen.max}`)
})

t.test('a database that cannot be reached refuses the publish as unavailable, and the log line carries no key', async (t) => {
  const { log: captured, lines } = capturedLogger('info')
  const dead = createDbClient({ url: 'mysql://nobody:x@127.0.0.1:1/none' })
  t.teardown(() => dead.close())
  const a = auth({ db: dead.db, log: captured })
  t.same(await a.authorize(KEY, '10.0.0.3'), { ok: false, reason: 'unavailable' })
  t.equal(a.stats.unavailable, 1)
  const out = lines.join('')
  t.match(out, /database unreachable/, 'the failure is logged')
  t.match(out, /ECONNREFUSED/, 'with the driver error code')
  t.notMatch(out, KEY, 'but not the key')
  t.notMatch(out, /params:/, 'nor the query parameters')
  t.match(out, /`stream_key` = \?/, 'the query is logged by its text, placeholders only')
})

t.test('fingerprints do not reveal the key', async (t) => {
  const fp = keyFingerprint(KEY)
  t.equal(fp.length, 10)
  t.notMatch(KEY, fp)
})
