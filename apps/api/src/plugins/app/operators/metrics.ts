import fp from 'fastify-plugin'
import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client'
import { heartbeatKey, parseHeartbeats, STREAM_EVENTS_QUEUE } from '@livestream/events'
import type { CacheReadResult } from '../streams/stream-cache.js'
import { RequestDurations } from './request-durations.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ApiMetrics
  }
}

/** What the rest of the api records into; everything else is collected at scrape time. */
export interface ApiMetrics {
  readonly registry: Registry
  /** An ingest event handled by the consumer: its type and outcome (`applied`, `duplicate`, …, or `failed`). */
  eventApplied(type: string, outcome: string): void
  /** The reaper ended a stream, and why (`node-lost`, `not-on-node`). */
  reaperAction(reason: string): void
  /** A read of the stream cache. */
  cacheRead(result: CacheReadResult): void
}

export interface MetricsOptions {
  queuePrefix: string
  /** A node silent for longer is counted `lost` (the reaper's own rule). */
  nodeTimeoutMs: number
  /** How long one COUNT of streams by status is reused across scrapes. */
  streamCountCacheMs?: number
}

const QUEUE_STATES = ['waiting', 'active', 'failed', 'delayed', 'completed'] as const
const STREAM_STATUSES = ['pending', 'live', 'ended'] as const

/**
 * The api's Prometheus metrics, in a registry of the app's own (tests build several apps in one process; the global
 * registry would refuse the second). Label values are bounded: the route is the pattern Fastify matched (never the
 * URL), `unmatched` when none did; event types and outcomes, reasons and states are closed sets.
 *
 * The request hook is the only per-request cost: one `onResponse` counting into a plain array (request-durations.ts).
 * Queue depths, consumer lag, streams by status and ingest nodes are read when Prometheus scrapes.
 */
export default fp(
  async (app, opts: MetricsOptions) => {
    const registry = new Registry()
    collectDefaultMetrics({ register: registry })

    const collectErrors = new Counter({
      name: 'livestream_metrics_collect_errors_total',
      help: 'Scrape-time collections that failed (Redis or MySQL unreachable); their gauges are left empty for that scrape.',
      labelNames: ['collector'],
      registers: [registry]
    })
    /** A gauge filled when Prometheus scrapes; when its source fails, it has no samples rather than stale ones. */
    function scrapedGauge<L extends string>(name: string, help: string, labelNames: L[], fill: (gauge: Gauge<L>) => Promise<void>): Gauge<L> {
      return new Gauge<L>({
        name,
        help,
        labelNames,
        registers: [registry],
        async collect() {
          try {
            await fill(this)
          } catch (err) {
            this.reset()
            collectErrors.inc({ collector: name })
            app.log.warn({ err: { message: (err as Error).message }, metric: name }, 'metrics collection failed')
          }
        }
      })
    }

    const durations = new RequestDurations()
    registry.registerMetric(durations as unknown as Metric)
    app.addHook('onResponse', (request, reply, done) => {
      durations.observe(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000)
      done()
    })

    const eventsApplied = new Counter({
      name: 'livestream_events_applied_total',
      help: 'Ingest events handled by the queue consumer, by event type and outcome (failed: thrown, to be retried or kept failed).',
      labelNames: ['type', 'outcome'],
      registers: [registry]
    })
    const reaperActions = new Counter({
      name: 'livestream_reaper_actions_total',
      help: 'Live streams the reaper ended, by reason (node-lost: its node stopped heartbeating; not-on-node: its node no longer holds it).',
      labelNames: ['reason'],
      registers: [registry]
    })
    const cacheRequests = new Counter({
      name: 'livestream_stream_cache_requests_total',
      help: 'Reads of the in-process stream cache: hit (served from memory or joined a load under way), miss (loaded from MySQL), bypass (cache off or not hearing changes).',
      labelNames: ['result'],
      registers: [registry]
    })
    const cacheChildren = { hit: cacheRequests.labels('hit'), miss: cacheRequests.labels('miss'), bypass: cacheRequests.labels('bypass') }

    const streamEvents = app.observedQueues.get(STREAM_EVENTS_QUEUE)!
    scrapedGauge('livestream_queue_jobs', 'Jobs in each BullMQ queue by state, read from Redis at scrape time.', ['queue', 'state'], async (g) => {
      for (const [name, queue] of app.observedQueues) {
        const counts = await queue.getJobCounts(...QUEUE_STATES)
        for (const state of QUEUE_STATES) g.set({ queue: name, state }, counts[state] ?? 0)
      }
    })
    scrapedGauge(
      'livestream_consumer_lag_seconds',
      'Age of the oldest job waiting in the stream-events queue (0 when none waits): how far behind the consumers are.',
      [],
      async (g) => {
        const [oldest] = await streamEvents.getWaiting(0, 0)
        g.set(oldest ? Math.max(0, (Date.now() - oldest.timestamp) / 1000) : 0)
      }
    )

    let streamCounts: { at: number; counts: Promise<Record<string, number>> } | null = null
    const streamCountCacheMs = opts.streamCountCacheMs ?? 5_000
    scrapedGauge('livestream_streams', 'Streams by status (one COUNT ... GROUP BY status, reused for a few seconds across scrapes).', ['status'], async (g) => {
      const now = Date.now()
      if (!streamCounts || now - streamCounts.at > streamCountCacheMs) {
        const counts = app.streams.countByStatus()
        const entry = { at: now, counts }
        streamCounts = entry
        counts.catch(() => {
          if (streamCounts === entry) streamCounts = null
        })
      }
      const counts = await streamCounts.counts
      for (const status of STREAM_STATUSES) g.set({ status }, counts[status] ?? 0)
    })

    scrapedGauge(
      'livestream_ingest_nodes',
      'Ingest nodes by their heartbeats in Redis: alive (heard within NODE_TIMEOUT_MS) or lost (silent for longer; forgotten after a day).',
      ['state'],
      async (g) => {
        const beats = parseHeartbeats(await app.redis.hgetall(heartbeatKey(opts.queuePrefix)))
        const now = Date.now()
        let alive = 0
        for (const hb of beats.values()) if (now - hb.at <= opts.nodeTimeoutMs) alive++
        g.set({ state: 'alive' }, alive)
        g.set({ state: 'lost' }, beats.size - alive)
      }
    )

    app.decorate('metrics', {
      registry,
      eventApplied: (type: string, outcome: string) => eventsApplied.inc({ type, outcome }),
      reaperAction: (reason: string) => reaperActions.inc({ reason }),
      cacheRead: (result: CacheReadResult) => cacheChildren[result].inc()
    } satisfies ApiMetrics)
  },
  { name: 'metrics', dependencies: ['redis', 'observed-queues'] }
)
