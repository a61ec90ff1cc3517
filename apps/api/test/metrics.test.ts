import { randomBytes } from 'node:crypto'
import t from 'tap'
import { Histogram, Registry, type Metric } from 'prom-client'
import { heartbeatKey, newEventId, STREAM_EVENTS_QUEUE } from '@livestream/events'
import { DURATION_BUCKETS, RequestDurations } from '../src/plugins/app/operators/request-durations.js'
import { as, assertEnvelope, build, register } from './helper.js'
import { serveWorkerMetrics } from '../src/worker-metrics.js'
// @ts-expect-error: a plain ES module of the repo's scripts, without types
import { kitProblems } from '../../../scripts/infra/metrics-kit.mjs'

const OPERATOR_TOKEN = randomBytes(32).toString('base64url')
const METRICS_TOKEN = randomBytes(32).toString('base64url')


const app = await build(
  t,
  // The reaper runs every 50 ms; nodes are lost after the default 30 s, so only the stale heartbeat below is.
  { OPERATOR_TOKEN, METRICS_TOKEN, REAPER_INTERVAL_MS: '50' },
  { consumer: true, reaper: true }
)
const queue = app.observedQueues.get(STREAM_EVENTS_QUEUE)!
const owner = await register(app, 'owner')
const api = as(app, owner)

const scrape = async (token = METRICS_TOKEN) => {
  const res = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${token}` } })
  if (res.statusCode !== 200) throw new Error(`scrape answered ${res.statusCode}: ${res.body}`)
  return res.body
}
/** The value of one sample, by its name and exact labels, or undefined when absent. */
const sample = (text: string, name: string, labels: Record<string, string> = {}): number | undefined => {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    const m = /^([^{ ]+)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const found = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]))
    if (Object.entries(labels).every(([k, v]) => found[k] === v) && Object.keys(found).length === Object.keys(labels).length) return Number(m[3])
  }
  return undefined
}
/** Scrapes until `ok` holds (the consumer and the reaper work on their own clock); the test's timeout bounds it. */
const scrapeUntil = async (ok: (text: string) => boolean) => {
  for (;;) {
    const text = await scrape()
    if (ok(text)) return text
    await new Promise((r) => setTimeout(r, 50))
  }
}

t.test('GET /metrics without a credential is a 401 in the envelope, with a wrong one too', async (t) => {
  assertEnvelope(t, await app.inject({ method: 'GET', url: '/metrics' }), 401)
  assertEnvelope(t, await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}x` } }), 401)
  assertEnvelope(t, await api('GET', '/metrics'), 401)
})

t.test('the metrics token and the operator token may scrape', async (t) => {
  t.match(await scrape(METRICS_TOKEN), /# TYPE http_request_duration_seconds histogram/)
  t.match(await scrape(OPERATOR_TOKEN), /# TYPE http_request_duration_seconds histogram/)
})

t.test('request durations are labelled by route pattern and status, never by URL', async (t) => {
  const created = await api('POST', '/api/livestream/streams', { title: 'timed' })
  const id = created.json().data.id as number
  await api('GET', `/api/livestream/streams/${id}`)
  await api('GET', '/api/livestream/streams/999999999')
  await app.inject({ method: 'GET', url: '/no/such/path/777' })
  const text = await scrape()
  const labels = { method: 'GET', route: '/api/livestream/streams/:id', status_code: '200' }
  t.ok(sample(text, 'http_request_duration_seconds_count', labels)! >= 1)
  t.ok(sample(text, 'http_request_duration_seconds_count', { ...labels, status_code: '404' })! >= 1)
  t.ok(sample(text, 'http_request_duration_seconds_count', { method: 'GET', route: 'unmatched', status_code: '404' })! >= 1)
  const routes = new Set([...text.matchAll(/route="([^"]*)"/g)].map((m) => m[1]!))
  t.ok(routes.has('/api/livestream/streams/:id'))
  t.same([...routes].filter((r) => /999999999|777|\/no\/such|\/streams\/\d/.test(r)), [], 'no raw URL in any route label')
  t.match(text, /http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/api\/livestream\/streams\/:id",status_code="200"\}/)
})

t.test('the hand-kept request histogram renders exactly as prom-client renders the same observations', async (t) => {
  const ours = new Registry()
  const durations = new RequestDurations()
  ours.registerMetric(durations as unknown as Metric)
  const theirs = new Registry()
  const reference = new Histogram({ name: durations.name, help: durations.help, labelNames: ['method', 'route', 'status_code'], buckets: [...DURATION_BUCKETS], registers: [theirs] })
  const seen: Array<[string, string, number, number]> = [
    ['GET', '/a/:id', 200, 0.001], // on a bound: counted in it (le)
    ['GET', '/a/:id', 200, 0.003],
    ['GET', '/a/:id', 200, 20], // past the last bound: +Inf only
    ['POST', '/a/:id', 201, 0.2],
    ['GET', 'unmatched', 404, 0]
  ]
  for (const [method, route, status, seconds] of seen) {
    durations.observe(method, route, status, seconds)
    reference.observe({ method, route, status_code: String(status) }, seconds)
  }
  const lines = async (r: Registry) => (await r.metrics()).split('\n').filter(Boolean).sort()
  t.same(await lines(ours), await lines(theirs))
  t.match(await ours.metrics(), /http_request_duration_seconds_bucket\{le="0.001",method="GET",route="\/a\/:id",status_code="200"\} 1\n/)
})

t.test('the default process metrics are there, the event loop lag among them', async (t) => {
  const text = await scrape()
  for (const name of ['nodejs_eventloop_lag_seconds', 'process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes']) {
    t.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name)
  }
})

t.test('queue depth by state and consumer lag come from Redis at scrape time', async (t) => {
  // The consumer takes valid jobs at once: a paused queue keeps these two waiting.
  await queue.pause()
  t.teardown(() => queue.resume())
  await queue.add('stream.published', { junk: true }, { jobId: newEventId(), timestamp: Date.now() - 60_000 })
  await queue.add('stream.published', { junk: true }, { jobId: newEventId() })
  const text = await scrape()
  // Paused jobs count as waiting in BullMQ's counts ('paused' is kept for older Redis layouts): both are there.
  t.equal(sample(text, 'livestream_queue_jobs', { queue: STREAM_EVENTS_QUEUE, state: 'waiting' }), 2)
  for (const state of ['active', 'failed', 'delayed', 'completed']) {
    t.type(sample(text, 'livestream_queue_jobs', { queue: STREAM_EVENTS_QUEUE, state }), 'number', state)
  }
  const lag = sample(text, 'livestream_consumer_lag_seconds')!
  t.ok(lag >= 59 && lag < 120, `the oldest waiting job is a minute old (${lag})`)
  await queue.drain()
  t.equal(sample(await scrape(), 'livestream_consumer_lag_seconds'), 0, 'nothing waits: no lag')
})

t.test('events applied by type and outcome; a payload that is no event counts as failed', async (t) => {
  const s = (await api('POST', '/api/livestream/streams', { title: 'consumed' })).json().data
  const event = { type: 'stream.published', id: newEventId(), nodeId: 'node-m', sessionId: 's1', at: new Date().toISOString(), streamId: s.id, playbackBaseUrl: 'http://node-m' }
  await queue.add(event.type, event, { jobId: event.id })
  await queue.add('junk', { nonsense: 1 }, { jobId: newEventId(), attempts: 1 })
  const text = await scrapeUntil(
    (x) =>
      sample(x, 'livestream_events_applied_total', { type: 'stream.published', outcome: 'applied' }) === 1 &&
      sample(x, 'livestream_events_applied_total', { type: 'invalid', outcome: 'failed' }) === 1
  )
  t.equal(sample(text, 'livestream_queue_jobs', { queue: STREAM_EVENTS_QUEUE, state: 'failed' }), 1, 'the failed job is kept, and counted')
})

t.test('streams by status: one count per status, every status present, following the database', async (t) => {
  await api('POST', '/api/livestream/streams', { title: 'counted' })
  const truth = await app.streams.countByStatus()
  t.ok(truth.pending >= 1 && truth.live >= 1, 'there are pending and live streams')
  // Counts are reused for up to 5 s across scrapes: the next count sees the new stream.
  const text = await scrapeUntil((x) => sample(x, 'livestream_streams', { status: 'pending' }) === truth.pending)
  t.equal(sample(text, 'livestream_streams', { status: 'live' }), truth.live)
  t.equal(sample(text, 'livestream_streams', { status: 'ended' }), truth.ended)
})

t.test('ingest nodes alive and lost, from the heartbeats; the reaper ends a lost node stream and counts it', async (t) => {
  const s = (await api('POST', '/api/livestream/streams', { title: 'reaped' })).json().data
  await app.streams.transition(s.id, 'live', { ingestNodeId: 'node-gone', playbackBaseUrl: 'http://x' })
  const key = heartbeatKey(app.observedQueues.get(STREAM_EVENTS_QUEUE)!.opts.prefix!)
  await app.redis.hset(key, 'node-gone', JSON.stringify({ nodeId: 'node-gone', playbackBaseUrl: 'http://x', at: Date.now() - 60_000, streamIds: [s.id] }))
  await app.redis.hset(key, 'node-here', JSON.stringify({ nodeId: 'node-here', playbackBaseUrl: 'http://y', at: Date.now() + 60_000, streamIds: [] }))
  const text = await scrapeUntil((x) => sample(x, 'livestream_reaper_actions_total', { reason: 'node-lost' }) === 1)
  t.equal(sample(text, 'livestream_ingest_nodes', { state: 'alive' }), 1)
  t.equal(sample(text, 'livestream_ingest_nodes', { state: 'lost' }), 1)
  t.equal((await api('GET', `/api/livestream/streams/${s.id}`)).json().data.status, 'ended')
})

t.test('stream cache reads count hits and misses', async (t) => {
  await scrapeUntil(() => app.streamCache.listening)
  const s = (await api('POST', '/api/livestream/streams', { title: 'cached' })).json().data
  const before = await scrape()
  await api('GET', `/api/livestream/streams/${s.id}`)
  await api('GET', `/api/livestream/streams/${s.id}`)
  const after = await scrape()
  const delta = (result: string) => sample(after, 'livestream_stream_cache_requests_total', { result })! - (sample(before, 'livestream_stream_cache_requests_total', { result }) ?? 0)
  t.equal(delta('miss'), 1, 'the first read loads')
  t.equal(delta('hit'), 1, 'the second is served from memory')
})

t.test('every metric has HELP and TYPE, and names follow the Prometheus conventions', async (t) => {
  const text = await scrape()
  const help = new Set([...text.matchAll(/^# HELP (\S+) \S/gm)].map((m) => m[1]))
  const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]))
  const sampled = new Set([...text.matchAll(/^([a-zA-Z_:][\w:]*)(?:\{| )/gm)].map((m) => m[1]!))
  t.ok(sampled.size > 20)
  for (const name of sampled) {
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '')
    t.ok(types.has(family), `${name} has TYPE`)
    t.ok(help.has(family), `${name} has HELP`)
    t.match(family, /^[a-z][a-z0-9_]*$/, `${family} is snake_case`)
    if (types.get(family) === 'counter') t.match(family, /_total$/, `${family}: counters end in _total`)
  }
  for (const name of [
    'http_request_duration_seconds',
    'livestream_queue_jobs',
    'livestream_consumer_lag_seconds',
    'livestream_events_applied_total',
    'livestream_reaper_actions_total',
    'livestream_streams',
    'livestream_stream_cache_requests_total',
    'livestream_ingest_nodes'
  ]) {
    t.ok(types.has(name), `${name} is exported`)
  }
})

t.test('every metric the operations kit queries (infra/metrics.json) is exported with its type and labels', async (t) => {
  t.same(kitProblems(await scrape(), 'api'), [], 'every metric the operations kit queries is exported with its type, labels and values')
})

t.test('a worker process serves GET /metrics alone on its metrics port, with the same credential', async (t) => {
  const served = await serveWorkerMetrics(app, 0, '127.0.0.1')
  t.teardown(() => served.close())
  const base = `http://127.0.0.1:${served.port}`
  const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/plain; version=0.0.4/)
  t.match(await res.text(), /^# TYPE livestream_events_applied_total counter$/m)
  const refused = await fetch(`${base}/metrics`)
  t.equal(refused.status, 401)
  t.same(await refused.json(), { success: false, data: null, message: 'metrics credentials required' })
  for (const path of ['/api/livestream/streams', '/docs', '/admin/queues/']) {
    const other = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${owner.token}` } })
    t.equal(other.status, 404, `${path} is not served there`)
    t.equal(((await other.json()) as { success: boolean }).success, false)
  }
})

t.test('scraping after driving every route reveals no stream key, e-mail or token', async (t) => {
  const s = (await api('POST', '/api/livestream/streams', { title: 'secret-ish' })).json().data
  const stranger = await register(app, 'stranger')
  await api('GET', `/api/livestream/streams/key?streamKey=${s.stream_key}`)
  await api('GET', '/api/livestream/streams?limit=5')
  await api('PATCH', `/api/livestream/streams/${s.id}/status`, { status: 'live' })
  await as(app, stranger)('POST', '/api/livestream/streams/join', { stream_id: s.id })
  await as(app, stranger)('GET', `/api/livestream/streams/${s.id}/participants`)
  await as(app, stranger)('POST', `/api/livestream/streams/${s.id}/leave`)
  await api('POST', `/api/livestream/streams/${s.id}/key/rotate`)
  await api('POST', `/api/livestream/streams/${s.id}/end`)
  await api('GET', '/api/auth/me')
  await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: owner.email, password: 'wrong password!' } })
  const text = await scrape()
  for (const secret of [s.stream_key, owner.email, stranger.email, owner.token, stranger.token, OPERATOR_TOKEN, METRICS_TOKEN, s.playback_id]) {
    t.notOk(text.includes(secret), 'a secret or personal value is absent')
  }
  t.notOk(text.includes('@'), 'no e-mail address at all')
})
