import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { createDbClient, findStreamByKey, findStreamsByIds, loggableError } from '@livestream/db'
import type { IngestConfig } from './config.js'
import { EventsProducer } from './events-producer.js'
import { Heartbeat } from './heartbeat.js'
import { LiveStreams } from './live-streams.js'
import { bridgeMediaServerLogs, type Logger } from './logger.js'
import { closeMediaHttp, createMediaHttp } from './media-http.js'
import { MediaWindows } from './media/window.js'
import { startReadiness } from './readiness.js'
import { createMediaServer } from './media-server.js'
import { recheckKeys } from './key-recheck.js'
import { everyNoOverlap } from './no-overlap-timer.js'
import { IngestMetrics, TrafficCounter } from './metrics.js'
import { PublishAuth } from './publish-auth.js'
import { Drain, type DrainStatus } from './drain.js'
import { MediaProxy } from './media-proxy.js'
import { nodeLoadMeter, type NodeLoad } from './node-load.js'
import { PlaybackDirectory } from './playback-directory.js'
import { viewerCounting } from './viewer-reports.js'

export interface IngestHandle {
  httpPort: number
  /** Starts the drain (SIGTERM; the operators' call does the same); `started` false when already draining. */
  drain(why: string): { started: boolean; status: DrainStatus }
  /** Resolves when a drain is over (the node holds nothing, or the deadline came): time to close. */
  drained: Promise<'empty' | 'deadline'>
  /** The autoscaling signal: live streams, ingest bitrate, CPU, draining (for the metrics module). */
  load(): NodeLoad
  close(): Promise<void>
}

/** Starts one ingest node: RTMP in, LL-HLS/DASH out (packaged in process, served from memory), events to the queue, heartbeats to Redis. */
export async function startIngest(config: IngestConfig, log: Logger): Promise<IngestHandle> {
  bridgeMediaServerLogs(log)

  const dbClient = createDbClient({ url: config.databaseUrl, connectionLimit: 5 })
  const producer = new EventsProducer({
    redisUrl: config.redisUrl,
    prefix: config.queuePrefix,
    nodeId: config.nodeId,
    outboxDir: config.outboxDir,
    log: log.child({ component: 'events' })
  })
  const auth = new PublishAuth({
    lookup: (key) => findStreamByKey(dbClient.db, key),
    cacheMs: config.authCacheMs,
    failLimit: config.publishFailLimit,
    slowdownMaxMs: config.publishSlowdownMaxMs,
    log: log.child({ component: 'publish-auth' })
  })
  // The live windows: the packagers fill them, media HTTP serves them, all in memory.
  const windows = new MediaWindows()
  const directory = new PlaybackDirectory({
    redisUrl: config.redisUrl,
    prefix: config.queuePrefix,
    nodeId: config.nodeId,
    internalUrl: config.internalUrl,
    refreshMs: config.heartbeatIntervalMs,
    // A timeline must outlast a publisher's reconnect (and a drain's wait), with room to spare.
    timelineTtlMs: Math.max(10 * 60_000, 2 * (config.reconnectWindowMs + config.drainMs)),
    log: log.child({ component: 'playback-directory' })
  })
  let heartbeat: Heartbeat | null = null
  const metrics = new IngestMetrics(config.nodeId)
  const live = new LiveStreams({
    directory,
    onHeldChange: () => void heartbeat?.beat(),
    windows,
    segmentSeconds: config.hlsSegmentSeconds,
    partSeconds: config.hlsPartSeconds,
    windowSegments: config.mediaWindowSegments,
    reconnectWindowMs: config.reconnectWindowMs,
    mediaRetentionMs: config.mediaRetentionMs,
    playbackBaseUrl: config.publicUrl,
    producer,
    observer: metrics.observer,
    log
  })
  heartbeat = new Heartbeat({
    redisUrl: config.redisUrl,
    prefix: config.queuePrefix,
    nodeId: config.nodeId,
    playbackBaseUrl: config.publicUrl,
    intervalMs: config.heartbeatIntervalMs,
    streamIds: () => live.ids(),
    log
  })
  // HLS/DASH viewers: counted in memory from media requests, reported as events (never a database write per request).
  const counting = config.viewers
    ? viewerCounting({
        ...config.viewers,
        windows,
        streams: () => live.announced(),
        send: (draft) => producer.send(draft),
        // Players proxied from here to the node holding their stream are counted here, where they arrive.
        edge: { holders: (ids) => directory.holdersOf(ids), nodeId: config.nodeId },
        log
      })
    : null
  const viewers = counting?.tracking
  const media = createMediaServer({ config, auth, live, log })
  const tls = config.tls ? { cert: await readFile(config.tls.certPath), key: await readFile(config.tls.keyPath) } : undefined
  let drain: Drain | null = null
  const load = nodeLoadMeter({ liveStreams: () => live.size, bytesIn: () => live.stats.bytesIn, draining: () => drain?.draining ?? false })
  const health = () => ({ ok: true, detail: { nodeId: config.nodeId, eventsPending: producer.stats.pending, ...load() } })
  const readiness = startReadiness(
    [
      { name: 'redis', check: () => producer.ping() },
      { name: 'mysql', check: () => dbClient.pool.query('SELECT 1') }
    ],
    { intervalMs: 1_000, timeoutMs: 2_000, log: log.child({ component: 'readiness' }) }
  )
  const proxy = new MediaProxy({ directory, timeoutMs: config.playbackProxyTimeoutMs, log: log.child({ component: 'playback-proxy' }) })
  const http = createMediaHttp({
    windows,
    ...(tls ? { tls } : {}),
    host: config.host,
    port: config.httpPort,
    requestTimeout: config.http.requestTimeout,
    headersTimeout: config.http.headersTimeout,
    health,
    // Draining: not ready, whatever the dependencies say, so that the load balancer sends nothing new here.
    ready: () => {
      const r = readiness.ready()
      return drain?.draining ? { ok: false, detail: { ...r.detail, draining: true } } : r
    },
    metrics: () => metrics.render(),
    ...(viewers ? { viewers } : {}),
    drain: { token: config.operatorToken, start: () => startDrain('operator call') },
    proxy,
    log
  })
  let drainedResolve: (why: 'empty' | 'deadline') => void = () => undefined
  const drained = new Promise<'empty' | 'deadline'>((resolve) => (drainedResolve = resolve))
  drain = new Drain({
    drainMs: config.drainMs,
    reconnectWindowMs: config.reconnectWindowMs,
    stopAccepting: () => media.stopAccepting(),
    publishing: () => live.publishing(),
    disconnect: (id) => live.disconnect(id),
    held: () => live.size,
    done: (why) => drainedResolve(why),
    log: log.child({ component: 'drain' })
  })
  const startDrain = (why: string) => (drain as Drain).start(why)
  // A stream whose publisher reconnected through another node is let go here as soon as that node claims it.
  const movedAway = everyNoOverlap(() => live.checkMovedAway(), 500, (err) => log.debug({ err: loggableError(err) }, 'moved-away check failed'))
  const rtmpTraffic = new TrafficCounter()
  const mediaTraffic = new TrafficCounter()
  rtmpTraffic.watch(media.rtmpServer)
  mediaTraffic.watch(http)
  metrics.readFrom({
    live,
    windows,
    auth,
    producer,
    rtmp: rtmpTraffic,
    media: mediaTraffic,
    draining: () => drain?.draining ?? false,
    ...(viewers ? { viewers: () => viewers.total() } : {})
  })

  // Streams ended through the api lose their publisher and end here; a rotated key cuts the publisher but leaves the
  // stream its reconnect window, for the owner to come back with the new key.
  const recheck = everyNoOverlap(
    () =>
      recheckKeys({
        held: () => live.keys(),
        holds: (streamId, streamKey) => live.holds(streamId, streamKey),
        lookup: (ids) => findStreamsByIds(dbClient.db, ids),
        end: async (streamId, streamKey) => {
          auth.forget(streamKey)
          await live.end(streamId, 'key-revoked')
        },
        rotated: (streamId, oldKey, newKey) => {
          auth.forget(oldKey)
          live.keyRotated(streamId, newKey)
        },
        log
      }),
    config.keyRecheckMs,
    (err) => log.warn({ err: loggableError(err) }, 'key recheck failed')
  )

  http.listen(config.httpPort, config.host)
  await once(http, 'listening')
  await media.run()
  heartbeat.start()
  directory.start()
  rtmpTraffic.start()
  counting?.reporter.start()
  log.info({ rtmpPort: config.rtmpPort, httpPort: config.httpPort, nodeId: config.nodeId, publicUrl: config.publicUrl }, 'ingest ready')

  // The close order, in one place; each step is awaited before the next.
  // - Timers first: no key recheck or readiness round starts while the node takes itself apart.
  // - Stop accepting before ending streams, so that no publish starts after the ones we end.
  // - End every stream while the producer still runs: each one's unpublish event goes into the outbox.
  // - node-media-server only then: stopped first, it would cut the publishers, and their streams would wait out the
  //   reconnect window and end as `publisher-left` instead of `node-shutdown`.
  // - The heartbeat once the streams are ended, so the reaper never takes this node for dead while they end.
  // - The producer once every event is in its outbox: it flushes them (bounded); what is left stays on disk.
  // - The database after everything that looks keys up (publish auth, the key recheck).
  // - Media HTTP then: players fetch the final segments, and probes get answers until the very end.
  // - The playback directory last: media HTTP proxies through it until it closes; it lets go of what it still claims.
  const closeSteps: Array<[step: string, run: () => unknown]> = [
    ['stop timers', () => {
      recheck.stop()
      readiness.stop()
      movedAway.stop()
      drain?.stop()
      rtmpTraffic.stop()
      counting?.reporter.stop()
    }],
    ['stop accepting publishes', () => media.stopAccepting()],
    ['end streams (unpublish events into the outbox)', () => live.endAll('node-shutdown')],
    ['stop node-media-server', () => media.stop()],
    ['stop heartbeat', () => heartbeat.stop()],
    ['flush and close the events producer', () => producer.close()],
    ['close the database pool', () => dbClient.close()],
    ['close media HTTP', () => closeMediaHttp(http)],
    ['close the playback proxy and directory', async () => {
      proxy.close()
      await directory.close()
    }]
  ]
  let closing: Promise<void> | null = null
  return {
    httpPort: (http.address() as AddressInfo).port,
    drain: startDrain,
    drained,
    load,
    close() {
      closing ??= (async () => {
        for (const [step, run] of closeSteps) {
          log.debug({ step }, 'closing')
          await run()
        }
      })()
      return closing
    }
  }
}
