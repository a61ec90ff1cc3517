// Webhook deliveries per second: distinct events delivered (a redelivery, which at-least-once allows, counts once and is
// shown in `duplicates`). N delivery jobs are put straight into the webhook-deliveries queue (the shape the
// api's fan-out gives them: one per event and endpoint, a stream.live body) for one endpoint, and timed at the
// receiver from the first delivery to the last: each is a BullMQ job, a fresh Standard Webhooks signature, a POST over a
// kept-alive connection, and a delivery-log row in MySQL. The ceiling, in the same run: the receiver fed by a bare Node
// sender (same body, same keep-alive agent, same 16 requests at once, no queue, no signature, no log).
import http from 'node:http'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import { ROOT, freePort, machine, sleep, start, table, waitFor, writeResults } from './lib.mjs'
import { benchStack } from './stack.mjs'

const N = Number(process.env.BENCH_WEBHOOKS ?? 5_000)
const CONCURRENCY = Number(process.env.BENCH_WEBHOOK_CONCURRENCY ?? 16)
/** BENCH_CPU_PROF=<dir>: a V8 CPU profile of the delivering api process (the one-process run) goes there. */
const PROFILE_DIR = process.env.BENCH_CPU_PROF
const RETRY_DELAYS = '5000,30000,180000,900000,3600000,10800000,21600000,43200000'

async function startReceiver() {
  const port = await freePort()
  const proc = start('receiver', process.execPath, [path.join(ROOT, 'bench/webhook-receiver.mjs')], { PORT: String(port) })
  const url = `http://127.0.0.1:${port}`
  await waitFor('receiver', async () => (await fetch(`${url}/stats`)).ok)
  return {
    proc,
    url,
    stats: async () => (await fetch(`${url}/stats`)).json(),
    reset: async () => fetch(`${url}/reset`, { method: 'POST' })
  }
}

function liveBody(i) {
  return JSON.stringify({
    type: 'stream.live',
    timestamp: new Date().toISOString(),
    data: {
      stream: {
        id: i + 1, ref_no: 'LS-BENCH0001', title: `bench stream ${i}`, status: 'live', connection: 'connected', viewer_count: 0,
        peak_viewer_count: 0, user_id: 1, playback_id: randomBytes(12).toString('base64url'),
        playback_url: 'https://cdn.example.com/hls/x/index.m3u8', dash_url: 'https://cdn.example.com/dash/x/index.mpd',
        ingest_node_id: 'node-1', ended_reason: null, started_at: new Date().toISOString(), ended_at: null,
        created_at: new Date().toISOString(), updated_at: new Date().toISOString()
      }
    }
  })
}

/** The ceiling: N POSTs of the same bodies, 16 at a time, over one kept-alive agent. */
async function bareSender(receiver) {
  await receiver.reset()
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })
  const bodies = Array.from({ length: 100 }, (_, i) => liveBody(i))
  let next = 0
  const post = (body) =>
    new Promise((resolve, reject) => {
      const req = http.request(`${receiver.url}/hook`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'webhook-id': `evt_bare${next}` } }, (res) => {
        res.resume()
        res.on('end', resolve)
      })
      req.on('error', reject)
      req.end(body)
    })
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < N) await post(bodies[next++ % bodies.length])
  }))
  agent.destroy()
  const s = await receiver.stats()
  return { sender: 'bare Node sender (no queue, no signature, no log)', processes: 1, events: s.distinct, duplicates: s.count - s.distinct, 's': ((s.last - s.first) / 1000).toFixed(2), 'deliveries/s': Math.round(s.distinct / ((s.last - s.first) / 1000)), failed: 0 }
}

async function ours(receiver, workers) {
  await receiver.reset()
  const stack = await benchStack(`webhooks${workers}`)
  const redis = new Redis(stack.common.REDIS_URL, { maxRetriesPerRequest: null })
  const queue = new Queue('webhook-deliveries', { connection: redis, prefix: stack.common.QUEUE_PREFIX })
  const env = { WEBHOOK_ALLOW_HTTP: 'true', WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_CONCURRENCY: String(CONCURRENCY), REAPER_ENABLED: 'false', WEBHOOK_RETRY_DELAYS_MS: RETRY_DELAYS }
  try {
    // Register the endpoint through the api with its worker off, so that the queue fills before anyone delivers.
    const setup = await stack.api({ ...env, WEBHOOK_WORKER_ENABLED: 'false' })
    const user = await stack.user(setup, 'hooks')
    const res = await fetch(`${setup.url}/api/webhooks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.token}` },
      body: JSON.stringify({ url: `${receiver.url}/hook` })
    })
    const endpoint = (await res.json()).data
    if (res.status !== 201) throw new Error(`endpoint not created: ${res.status}`)
    await setup.stop()
    const jobOpts = { attempts: RETRY_DELAYS.split(',').length + 1, backoff: { type: 'webhook-jitter' }, removeOnComplete: { age: 86_400, count: 50_000 }, removeOnFail: { age: 604_800, count: 50_000 } }
    for (let k = 0; k < N; k += 1000) {
      await queue.addBulk(
        Array.from({ length: Math.min(1000, N - k) }, (_, j) => {
          const eventId = `evt_bench${k + j}`
          return { name: 'stream.live', data: { endpointId: endpoint.id, eventId, eventType: 'stream.live', body: liveBody(k + j) }, opts: { ...jobOpts, jobId: `whd_${endpoint.id}_${eventId}` } }
        })
      )
    }
    await stack.api(env, 'server.js', PROFILE_DIR && workers === 1 ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [])
    if (workers > 1) stack.api(env, 'worker.js')
    await waitFor('every event delivered', async () => (await receiver.stats()).distinct >= N, 600_000, 100)
    const s = await receiver.stats()
    const failed = (await queue.getJobCounts('failed')).failed
    return { sender: 'ours: queue -> sign -> POST -> log row', processes: workers, events: s.distinct, duplicates: s.count - s.distinct, 's': ((s.last - s.first) / 1000).toFixed(2), 'deliveries/s': Math.round(s.distinct / ((s.last - s.first) / 1000)), failed }
  } finally {
    await queue.obliterate({ force: true }).catch(() => {})
    await queue.close()
    redis.disconnect()
    await stack.close()
    await sleep(500)
  }
}

const receiver = await startReceiver()
try {
  const rows = [await bareSender(receiver), await ours(receiver, 1), await ours(receiver, 2)]
  const ceiling = rows[0]['deliveries/s']
  for (const r of rows) r['x ceiling'] = (r['deliveries/s'] / ceiling).toFixed(2)
  const out = table(rows)
  console.log(`\nWebhook deliveries\n${out}`)
  writeResults(
    'webhooks',
    `## Webhook deliveries\n\n\`pnpm bench:webhooks\` (BENCH_WEBHOOKS=${N} deliveries to one endpoint, ${CONCURRENCY} at once per process; timed at the receiver from the first delivery to the last new webhook-id; duplicates = deliveries beyond one per event), ${new Date().toISOString().slice(0, 10)}, ${machine()}\n\n${out}\n\nThe machine was shared with other engineers' work during the run (busy, noisy): compare the ratio to the ceiling, measured in the same run, rather than the absolute rates. Each delivery of ours is one BullMQ job, a read of the endpoint (its URL and secrets, fresh at each attempt), one HMAC-SHA256 signature, one POST over a kept-alive connection to a receiver that answers at once, and one log row in MySQL (the endpoint's own record is written only when it changes, and the log's cap is kept every 50th row). The first run of this bench, before that, wrote the endpoint's row in every delivery's transaction: deliveries to one endpoint deadlocked on it (the log row's foreign-key check takes a shared lock on that row first) and were delivered again on their retry; \`apps/api/test/webhooks-delivery.test.ts\` now sends 60 events at once to one endpoint and requires one delivery each.`
  )
} finally {
  await receiver.proc.stop()
}
