import t, { type Test } from 'tap'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { createDbClient } from '@livestream/db'
import { createTestDatabase } from '@livestream/db/testing'
import { EventsProducer } from '../src/events-producer.js'
import { createMediaHttp } from '../src/media-http.js'
import { MediaWindows } from '../src/media/window.js'
import { startReadiness } from '../src/readiness.js'
import { testQueuePrefix } from '@livestream/events/testing'
import { capturedLogger, dropRedisPrefix, tempDir } from './helper.js'

const REDIS = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const tdb = await createTestDatabase('ls_ready')
const db = createDbClient({ url: tdb.url })
const { log } = capturedLogger('warn')
// This run's own prefix, removed at the end: the producer writes its queue's keys there once Redis answers.
const prefix = testQueuePrefix('ready')
t.teardown(async () => {
  await db.close()
  await tdb.drop()
  await dropRedisPrefix(prefix)
})

/** A node's /readyz over real HTTP, with a producer on `redisUrl` and MySQL as given. */
async function readyz(t: Test, redisUrl: string, mysql: () => Promise<unknown>) {
  const producer = new EventsProducer({ redisUrl, prefix, nodeId: 'node-r', outboxDir: await tempDir(t, 'ls-ready-outbox-'), log })
  const readiness = startReadiness(
    [
      { name: 'redis', check: () => producer.ping() },
      { name: 'mysql', check: mysql }
    ],
    { intervalMs: 100, timeoutMs: 500, log }
  )
  const http = createMediaHttp({
    windows: new MediaWindows(), host: '127.0.0.1', port: 0, requestTimeout: 2_000, headersTimeout: 1_000,
    health: () => ({ ok: true, detail: {} }), ready: () => readiness.ready(), metrics: () => '', log
  })
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  t.teardown(async () => {
    readiness.stop()
    await producer.close(100)
    await new Promise((r) => http.close(r))
  })
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
  await new Promise((r) => setTimeout(r, 1_500)) // a few probe rounds
  const [health, ready] = await Promise.all([fetch(`${url}/healthz`), fetch(`${url}/readyz`)])
  return { health: health.status, status: ready.status, body: (await ready.json()) as { success: boolean; message: string; data: Record<string, unknown> } }
}

t.test('an ingest whose Redis is unreachable is alive but not ready, and /readyz names redis', async (t) => {
  const r = await readyz(t, 'redis://127.0.0.1:1', () => db.pool.query('SELECT 1'))
  t.equal(r.health, 200, '/healthz: alive')
  t.equal(r.status, 503)
  t.match(r.body, { success: false, message: /not ready \(down: redis\)/, data: { redis: 'down', mysql: 'up' } })
})

t.test('an ingest whose MySQL is unreachable: /readyz 503 naming mysql', async (t) => {
  const r = await readyz(t, REDIS, () => Promise.reject(new Error('connect ECONNREFUSED')))
  t.equal(r.status, 503)
  t.match(r.body, { message: /down: mysql/, data: { redis: 'up', mysql: 'down' } })
})

t.test('both answer: /readyz 200', async (t) => {
  const r = await readyz(t, REDIS, () => db.pool.query('SELECT 1'))
  t.equal(r.status, 200)
  t.match(r.body, { success: true, message: 'ready', data: { redis: 'up', mysql: 'up' } })
})
