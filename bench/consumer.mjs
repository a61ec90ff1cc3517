// Consumer throughput: 20,000 events straight into the queue, timed to drain, with one and then two workers.
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import { createDbClient, streams, users } from '@livestream/db'
import { STREAM_EVENTS_QUEUE, newEventId } from '@livestream/events'
import { machine, sleep, table, waitFor, writeResults } from './lib.mjs'
import { benchStack } from './stack.mjs'

const EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000)
const STREAMS = 1_000

async function runOnce(workers) {
  const stack = await benchStack(`consumer${workers}`)
  const redis = new Redis(stack.common.REDIS_URL, { maxRetriesPerRequest: null })
  const queue = new Queue(STREAM_EVENTS_QUEUE, { connection: redis, prefix: stack.common.QUEUE_PREFIX })
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
      const streamId = ids[i++ % ids.length]
      const base = { nodeId: 'bench-node', sessionId: `s${streamId}`, streamId }
      const at = () => new Date().toISOString()
      const round = Math.floor(i / ids.length)
      if (round === 0) events.push({ ...base, type: 'stream.published', id: newEventId(), at: at(), playbackBaseUrl: 'http://bench' })
      else if (round % 2 === 1) events.push({ ...base, type: 'viewer.joined', id: newEventId(), at: at(), userId: viewerIds[round % viewerIds.length] })
      else if (round < 18) events.push({ ...base, type: 'viewer.left', id: newEventId(), at: at(), userId: viewerIds[(round - 1) % viewerIds.length] })
      else events.push({ ...base, type: 'stream.unpublished', id: newEventId(), at: at(), reason: 'publisher-left' })
    }
    for (let k = 0; k < events.length; k += 1000) {
      await queue.addBulk(events.slice(k, k + 1000).map((e) => ({ name: e.type, data: e, opts: { jobId: e.id, removeOnComplete: true } })))
    }
    const started = Date.now()
    const procs = [await stack.api({ CONSUMER_CONCURRENCY: '16', REAPER_ENABLED: 'false' })]
    if (workers > 1) procs.push(await stack.api({ CONSUMER_CONCURRENCY: '16', REAPER_ENABLED: 'false' }, 'worker.js'))
    await waitFor('drain', async () => {
      const c = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized')
      return Object.values(c).every((n) => n === 0)
    }, 600_000, 100)
    const secs = (Date.now() - started) / 1000
    const failed = (await queue.getJobCounts('failed')).failed
    return { workers, events: EVENTS, seconds: secs.toFixed(1), 'events/s': Math.round(EVENTS / secs), failed }
  } finally {
    await queue.obliterate({ force: true }).catch(() => {})
    await queue.close()
    redis.disconnect()
    await stack.close()
    await sleep(500)
  }
}

const rows = [await runOnce(1), await runOnce(2)]
const out = table(rows)
const verdict = `one worker >= 2,000 events/s: ${rows[0]['events/s'] >= 2000 ? 'met' : 'missed'} (${rows[0]['events/s']}/s); two workers: ${(rows[1]['events/s'] / rows[0]['events/s']).toFixed(2)}x one`
console.log(`\nConsumer drain (includes worker start-up)\n${out}\n${verdict}`)
writeResults('consumer', `## Consumer throughput\n\n\`pnpm bench:consumer\` (BENCH_EVENTS=${EVENTS}, concurrency 16 per worker), ${new Date().toISOString().slice(0, 10)}, ${machine()}\n\n${out}\n\n- ${verdict}`)
