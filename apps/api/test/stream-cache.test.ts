import t from 'tap'
import { testQueuePrefix } from '@livestream/events/testing'
import { eq } from 'drizzle-orm'
import { createDbClient, streams } from '@livestream/db'
import { createTestDatabase } from '@livestream/db/testing'
import { buildApp } from '../src/app.js'
import { createStreamCache } from '../src/plugins/app/streams/stream-cache.js'
import { as, assertEnvelope, dropRedisPrefix, register, testConfig } from './helper.js'

const deferred = <T>() => {
  let resolve!: (v: T) => void
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}

t.test('the cache: hits within the ttl, expiry, changes, loads racing a change, shared misses, errors, deafness', async (t) => {
  let clock = 1_000
  const announced: number[] = []
  const cache = createStreamCache({ ttlMs: 100, now: () => clock, announce: (id) => announced.push(id) })
  let loads = 0
  const load = (v: string) => async () => {
    loads++
    return v
  }

  t.equal(await cache.readStream(1, 'row', load('a')), 'a', 'not listening yet: loads')
  t.equal(await cache.readStream(1, 'row', load('b')), 'b', 'and does not keep')
  cache.setListening(true)
  t.equal(await cache.readStream(1, 'row', load('c')), 'c')
  t.equal(await cache.readStream(1, 'row', load('d')), 'c', 'a hit')
  t.equal(loads, 3, 'the hit loaded nothing')
  t.equal(await cache.readStream(1, 'owner-json', load('o')), 'o', 'variants are apart')
  t.equal(await cache.readPage('p1', load('page')), 'page')
  clock += 101
  t.equal(await cache.readStream(1, 'row', load('e')), 'e', 'expired')

  await cache.readStream(2, 'row', load('two'))
  cache.changed(1)
  t.same(announced, [1], 'a change is announced')
  t.equal(await cache.readStream(1, 'row', load('f')), 'f', 'a change drops the stream')
  t.equal(await cache.readStream(1, 'owner-json', load('o2')), 'o2', 'with all its variants')
  t.equal(await cache.readPage('p1', load('page2')), 'page2', 'and every page')
  t.equal(await cache.readStream(2, 'row', load('x')), 'two', 'other streams stay')
  cache.dropped(2)
  t.equal(await cache.readStream(2, 'row', load('two-b')), 'two-b', 'a change from another process drops it too')
  t.same(announced, [1], 'without announcing it again')

  // A load that began before a change answers its caller but is not kept.
  const slow = deferred<string>()
  const before = cache.readStream(3, 'row', () => slow.promise)
  cache.changed(3)
  slow.resolve('old')
  t.equal(await before, 'old')
  t.equal(await cache.readStream(3, 'row', load('new')), 'new', 'the stale read was not stored')

  // Concurrent misses share one load.
  const shared = deferred<string>()
  let sharedLoads = 0
  const readers = Array.from({ length: 5 }, () =>
    cache.readStream(4, 'row', () => {
      sharedLoads++
      return shared.promise
    })
  )
  shared.resolve('once')
  t.same(await Promise.all(readers), ['once', 'once', 'once', 'once', 'once'])
  t.equal(sharedLoads, 1)

  await t.rejects(cache.readStream(5, 'row', () => Promise.reject(new Error('db down'))), /db down/)
  t.equal(await cache.readStream(5, 'row', load('up')), 'up', 'a failure is not kept')

  cache.setListening(false)
  t.equal(cache.size, 0, 'deaf: emptied')
  t.equal(await cache.readStream(4, 'row', load('fresh')), 'fresh')
  t.equal(await cache.readStream(4, 'row', load('fresher')), 'fresher', 'and nothing is kept while deaf')
})

t.test('the cache is bounded', async (t) => {
  const cache = createStreamCache({ ttlMs: 60_000, maxEntries: 3 })
  cache.setListening(true)
  for (let id = 1; id <= 10; id++) await cache.readStream(id, 'row', async () => id)
  t.ok(cache.size <= 3, `size ${cache.size}`)
})

t.test('two api processes over one database: a change made through one is seen at once through the other', async (t) => {
  const db = await createTestDatabase('ls_cache')
  const prefix = testQueuePrefix('cache')
  // A ttl far longer than the test: only the announcement can explain a fresh answer.
  const env = { QUEUE_PREFIX: prefix, STREAM_CACHE_MS: '600000' }
  const a = await buildApp({ config: testConfig(db.url, env), consumer: false, reaper: false })
  const b = await buildApp({ config: testConfig(db.url, env), consumer: false, reaper: false })
  t.teardown(async () => {
    await a.close()
    await b.close()
    await db.drop()
    await dropRedisPrefix(prefix)
  })
  await Promise.all([a.ready(), b.ready()])
  await t.resolves(waitFor(() => a.streamCache.listening && b.streamCache.listening), 'both subscribed')

  const owner = await register(a, 'cache-owner')
  const viewer = await register(a, 'cache-viewer')
  const created = assertEnvelope(t, await as(a, owner)('POST', '/api/livestream/streams', { title: 'cached' }), 201).data
  const getB = () => as(b, viewer)('GET', `/api/livestream/streams/${created.id}`)
  const ownerB = () => as(b, owner)('GET', `/api/livestream/streams/${created.id}`)
  const listB = () => as(b, viewer)('GET', '/api/livestream/streams?limit=5')

  t.equal(assertEnvelope(t, await getB(), 200).data.status, 'pending')
  t.equal(assertEnvelope(t, await ownerB(), 200).data.stream_key, created.stream_key)
  t.notOk('stream_key' in assertEnvelope(t, await getB(), 200).data, 'the public rendering never carries the key')
  t.equal(assertEnvelope(t, await listB(), 200).data[0].status, 'pending')
  t.ok(b.streamCache.size >= 2, 'b holds the row and the page')

  assertEnvelope(t, await as(a, owner)('POST', `/api/livestream/streams/${created.id}/start`), 200)
  await t.resolves(waitFor(async () => (await getB()).json().data.status === 'live'), 'b sees live')
  t.equal(assertEnvelope(t, await listB(), 200).data[0].status, 'live', 'and its page too')

  const rotated = assertEnvelope(t, await as(a, owner)('POST', `/api/livestream/streams/${created.id}/key/rotate`), 200).data
  await t.resolves(waitFor(async () => (await ownerB()).json().data.stream_key === rotated.stream_key), 'b shows the owner the new key')

  // A write that bypasses the service (the queue consumer announces its own) is not seen until announced.
  const direct = createDbClient({ url: db.url })
  t.teardown(() => direct.close())
  await direct.db.update(streams).set({ title: 'renamed' }).where(eq(streams.id, created.id))
  await getB()
  t.equal((await getB()).json().data.title, 'cached', 'still the cached row')
  a.streamCache.changed(created.id)
  await t.resolves(waitFor(async () => (await getB()).json().data.title === 'renamed'), 'announced, then seen')
})

t.test('without Redis to hear changes, nothing is cached and every read is fresh', async (t) => {
  const db = await createTestDatabase('ls_cache_deaf')
  const app = await buildApp({ config: testConfig(db.url, { REDIS_URL: 'redis://127.0.0.1:1' }), consumer: false, reaper: false, webhookWorker: false })
  t.teardown(async () => {
    await app.close()
    await db.drop()
  })
  await app.ready()
  const owner = await register(app, 'deaf')
  const created = assertEnvelope(t, await as(app, owner)('POST', '/api/livestream/streams', { title: 'before' }), 201).data
  const direct = createDbClient({ url: db.url })
  t.teardown(() => direct.close())
  t.equal((await as(app, owner)('GET', `/api/livestream/streams/${created.id}`)).json().data.title, 'before')
  await direct.db.update(streams).set({ title: 'after' }).where(eq(streams.id, created.id))
  t.equal((await as(app, owner)('GET', `/api/livestream/streams/${created.id}`)).json().data.title, 'after')
  t.equal(app.streamCache.size, 0)
  t.notOk(app.streamCache.listening)
})

async function waitFor(check: () => boolean | Promise<boolean>, ms = 3_000) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return true
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error('condition not met in time')
}
