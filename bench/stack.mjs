// Starts our api / ingest for a bench: own database, queue prefix and secret; free ports.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Redis } from 'ioredis'
import { createTestDatabase } from '@livestream/db/testing'
import { dropPrefixKeys } from '@livestream/events/testing'
import { ROOT, freePort, start, waitFor } from './lib.mjs'

/** Removes the keys a bench's processes wrote under its own prefix (queues, heartbeats, caches). */
async function dropKeys(url, prefix) {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await redis.connect()
    await dropPrefixKeys(redis, prefix)
  } finally {
    redis.disconnect()
  }
}

export async function benchStack(name) {
  const db = await createTestDatabase(`ls_bench_${name}`)
  const mediaRoot = mkdtempSync(path.join(tmpdir(), `ls-bench-${name}-`))
  const common = {
    DATABASE_URL: db.url,
    REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
    QUEUE_PREFIX: `lsbench-${name}-${randomBytes(3).toString('hex')}`,
    JWT_SECRET: randomBytes(32).toString('hex')
    // LOG_LEVEL stays at its default (info): benchmarks measure what production runs.
  }
  const procs = []
  const stack = {
    db,
    common,
    mediaRoot,
    /** `nodeArgs` go before the entry, as for ingest. */
    async api(env = {}, entry = 'server.js', nodeArgs = [], startOpts = { logTo: `${name}-api-${procs.length}.log` }) {
      const port = await freePort()
      const p = start('api', process.execPath, [...nodeArgs, path.join(ROOT, 'apps/api/dist', entry)], { ...common, PORT: String(port), HOST: '127.0.0.1', AUTH_RATE_LIMIT_MAX: '100000', ...env }, startOpts)
      procs.push(p)
      p.url = `http://127.0.0.1:${port}`
      if (entry === 'server.js') await waitFor('api', async () => (await fetch(`${p.url}/healthz`)).ok)
      return p
    },
    /** `nodeArgs` go before the entry (`--cpu-prof`, which NODE_OPTIONS refuses). */
    async ingest(env = {}, nodeArgs = []) {
      const rtmpPort = await freePort()
      const httpPort = await freePort()
      const p = start('ingest', process.execPath, [...nodeArgs, path.join(ROOT, 'apps/ingest/dist/server.js')], {
        ...common,
        RTMP_PORT: String(rtmpPort),
        HTTP_PORT: String(httpPort),
        HOST: '127.0.0.1',
        INGEST_NODE_ID: `bench-${name}`,
        INGEST_PUBLIC_URL: `http://127.0.0.1:${httpPort}`,
        MEDIA_ROOT: mediaRoot,
        MALLOC_MMAP_THRESHOLD_: '131072', // as every launcher of ingest sets it: ALLOCATOR_ENV in apps/ingest/src/rtmp-limits.ts
        ...env
      }, { logTo: `${name}-ingest-${procs.length}.log` })
      procs.push(p)
      Object.assign(p, { rtmpPort, httpPort, publicUrl: `http://127.0.0.1:${httpPort}` })
      await waitFor('ingest', async () => (await fetch(`${p.publicUrl}/healthz`)).ok)
      return p
    },
    async user(api, tag = 'bench') {
      const res = await fetch(`${api.url}/api/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: `${tag}-${randomBytes(4).toString('hex')}@example.com`, password: 'correct horse battery', display_name: tag })
      })
      const body = await res.json()
      return { id: body.data.user.id, token: body.data.token }
    },
    async createStream(api, user, title = 'bench') {
      const res = await fetch(`${api.url}/api/livestream/streams`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${user.token}` },
        body: JSON.stringify({ title })
      })
      return (await res.json()).data
    },
    async close() {
      for (const p of procs.reverse()) await p.stop()
      await dropKeys(common.REDIS_URL, common.QUEUE_PREFIX)
      await db.drop()
      rmSync(mediaRoot, { recursive: true, force: true })
    }
  }
  return stack
}
