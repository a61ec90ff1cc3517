import t from 'tap'
import pino from 'pino'
import { createDbClient, streams, users } from '@livestream/db'
import { createTestDatabase } from '@livestream/db/testing'
import { eq } from 'drizzle-orm'
import { keyFingerprint, PublishAuth } from '../src/publish-auth.js'

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

t.test('a known key of a pending stream is accepted; unknown, malformed and ended keys are refused', async (t) => {
  const auth = new PublishAuth(client.db, 0, 100, log)
  const ok = await auth.authorize(KEY, '10.0.0.1')
  t.ok(ok.ok)
  t.same(await auth.authorize('00000000-0000-4000-8000-000000000000', '10.0.0.1'), { ok: false, reason: 'unknown' })
  t.same(await auth.authorize('../../etc', '10.0.0.1'), { ok: false, reason: 'malformed' })
  t.same(await auth.authorize('x'.repeat(10_000), '10.0.0.1'), { ok: false, reason: 'malformed' })
  await client.db.update(streams).set({ status: 'ended' }).where(eq(streams.streamKey, KEY))
  t.same(await auth.authorize(KEY, '10.0.0.1'), { ok: false, reason: 'ended' })
  await client.db.update(streams).set({ status: 'pending' }).where(eq(streams.streamKey, KEY))
})

t.test('answers are cached for the configured time, misses included', async (t) => {
  const auth = new PublishAuth(client.db, 60_000, 100, log)
  t.ok((await auth.authorize(KEY, '10.0.0.2')).ok)
  await client.db.update(streams).set({ status: 'ended' }).where(eq(streams.streamKey, KEY))
  t.ok((await auth.authorize(KEY, '10.0.0.2')).ok, 'served from the cache')
  auth.forget(KEY)
  t.notOk((await auth.authorize(KEY, '10.0.0.2')).ok, 'forgotten: read again')
  await client.db.update(streams).set({ status: 'pending' }).where(eq(streams.streamKey, KEY))
})

t.test('an address that keeps failing is refused without a lookup, and slowly', async (t) => {
  const auth = new PublishAuth(client.db, 0, 3, log)
  for (let i = 0; i < 3; i++) await auth.authorize('00000000-0000-4000-8000-00000000000' + i, '10.0.0.9')
  const started = Date.now()
  const v = await auth.authorize(KEY, '10.0.0.9')
  t.same(v, { ok: false, reason: 'throttled' }, 'even a right key is refused while throttled')
  t.ok(Date.now() - started >= 400, 'the refusal is delayed')
  t.ok((await auth.authorize(KEY, '10.0.0.10')).ok, 'other addresses are unaffected')
})

t.test('a database that cannot be reached refuses the publish as unavailable', async (t) => {
  const dead = createDbClient({ url: 'mysql://nobody:x@127.0.0.1:1/none' })
  t.teardown(() => dead.close())
  const auth = new PublishAuth(dead.db, 0, 100, log)
  t.same(await auth.authorize(KEY, '10.0.0.3'), { ok: false, reason: 'unavailable' })
  t.equal(auth.stats.unavailable, 1)
})

t.test('fingerprints do not reveal the key', async (t) => {
  const fp = keyFingerprint(KEY)
  t.equal(fp.length, 10)
  t.notMatch(KEY, fp)
})
