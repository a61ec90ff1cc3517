// Consumer throughput: 20,000 events straight into the queue (with ingest's job options), timed to drain, with one and then two workers of ours,
// and as the ceiling a BullMQ worker whose processor does nothing. Throughput counts from the first job taken (process
// start-up apart, printed beside it) to the drain.
import path from 'node:path'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import { createDbClient, streams, users } from '@livestream/db'
import { DEFAULT_JOB_OPTIONS, STREAM_EVENTS_QUEUE, jobIdFor, newEventId } from '@livestream/events'
import { ROOT, machine, sleep, start, table, waitFor, writeResults } from './lib.mjs'
import { benchStack } from './stack.mjs'

const EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000)
const STREAMS = 1_000
const CONCURRENCY = process.env.BENCH_CONSUMER_CONCURRENCY ?? '16'
/** BENCH_CPU_PROF=<dir>: V8 CPU profiles of our api process (the consumer) go there. */
const PROFILE_DIR = process.env.BENCH_CPU_PROF

async function runOnce(workers, bare = false) {
  const stack = await benchStack(`consumer${bare ? 'bare' : workers}`)
  const redis = new Redis(stack.common.REDIS_URL, { maxRetriesPerRequest: null })
  const queue = new Queue(STREAM_EVENTS_QUEUE, { connection: redis, prefix: stack.common.QUEUE_PREFIX })
  let bareWorker = null
  try {
    const client = createDbClient({ url: stack.db.url })
    const [u] = await client.db.insert(users).values({ email: 'bench@example.com', displayName: 'bench' })
    const viewerIds = []
    for (let i = 0; i < 20; i++) viewerIds.push((await client.db.insert(users).values({ email: `v${i}@example.com`, displayName: `v${i}` }))[0].insertId)
    const rows = Array.from({ length: STREAMS }, (_, i) => ({ refNo: `B-${i}`, title: 't', streamKey: `k-${i}`, playbackId: `p-${i}`, userId: u.insertId }))
    await client.db.insert(streams).values(rows)
    const ids = (await client.db.select({ id: streams.id }).from(streams)).map((r) => r.id)
    await client.close()

    // A realistic mix per stream: publish, viewers join and leave, unpublish.
    const events = []
    let i = 0
    while (events.length < EVENTS) {
      // Event k goes to stream k % N in round k / N: every stream's publish comes in round 0, its unpublish last (an
      // unpublish that finds its stream never published is retried by the consumer, as it would have overtaken it).
      const k = i++
      const streamId = ids[k % ids.length]
      const base = { nodeId: 'bench-node', sessionId: `s${streamId}`, streamId }
      const at = () => new Date().toISOString()
      const round = Math.floor(k / ids.length)
      if (round === 0) events.push({ ...base, type: 'stream.published', id: newEventId(), at: at(), playbackBaseUrl: 'http://bench' })
      else if (round % 2 === 1) events.push({ ...base, type: 'viewer.joined', id: newEventId(), at: at(), userId: viewerIds[round % viewerIds.length] })
      else if (round < 18) events.push({ ...base, type: 'viewer.left', id: newEventId(), at: at(), userId: viewerIds[(round - 1) % viewerIds.length] })
      else events.push({ ...base, type: 'stream.unpublished', id: newEventId(), at: at(), reason: 'publisher-left' })
    }
    for (let k = 0; k < events.length; k += 1000) {
      await queue.addBulk(events.slice(k, k + 1000).map((e) => ({ name: e.type, data: e, opts: { ...DEFAULT_JOB_OPTIONS, jobId: jobIdFor(e) } })))
    }
    const started = Date.now()
    const workerEnv = { CONSUMER_CONCURRENCY: CONCURRENCY, REAPER_ENABLED: 'false', ...(process.env.DB_POOL_SIZE ? { DB_POOL_SIZE: process.env.DB_POOL_SIZE } : {}) }
    // Ours are stopped by stack.close(); they start consuming before their /healthz answers, so not awaited here.
    const ours = []
    if (bare) bareWorker = start('bare-worker', process.execPath, [path.join(ROOT, 'bench/bare-worker.mjs')], { ...stack.common, ...workerEnv })
    else {
      ours.push(stack.api(workerEnv, 'server.js', PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : []))
      if (workers > 1) ours.push(stack.api(workerEnv, 'worker.js'))
    }
    const firstTaken = await waitFor('first job taken', async () => (await queue.getWaitingCount()) < EVENTS && Date.now(), 60_000, 10)
    await waitFor('drain', async () => {
      const c = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized')
      return Object.values(c).every((n) => n === 0)
    }, 600_000, 20)
    const done = Date.now()
    const secs = (done - firstTaken) / 1000
    const failed = (await queue.getJobCounts('failed')).failed
    await Promise.all(ours)
    return {
      consumer: bare ? 'bare BullMQ, no-op processor' : 'ours',
      workers,
      events: EVENTS,
      'start-up s': ((firstTaken - started) / 1000).toFixed(1),
      'drain s': secs.toFixed(1),
      'events/s': Math.round(EVENTS / secs),
      failed
    }
  } finally {
    await bareWorker?.stop()
    await queue.obliterate({ force: true }).catch(() => {})
    await queue.close()
    redis.disconnect()
    await stack.close()
    await sleep(500)
  }
}

const rows = [await runOnce(1, true), await runOnce(1), await runOnce(2)]
const [ceiling, one, two] = rows.map((r) => r['events/s'])
for (const r of rows) r['x ceiling'] = (r['events/s'] / ceiling).toFixed(2)
const out = table(rows)
const verdict = `one worker >= 2,000 events/s: ${one >= 2000 ? 'met' : 'missed'} (${one}/s, ${(one / ceiling).toFixed(2)}x the no-op BullMQ worker's ${ceiling}/s); two workers: ${(two / one).toFixed(2)}x one`
console.log(`\nConsumer drain\n${out}\n${verdict}`)
writeResults('consumer', `## Consumer throughput\n\n\`pnpm bench:consumer\` (BENCH_EVENTS=${EVENTS}, concurrency ${CONCURRENCY} per worker; events/s from the first job taken to the drain, process start-up apart), ${new Date().toISOString().slice(0, 10)}, ${machine()}\n\n${out}\n\n- ${verdict}`)
