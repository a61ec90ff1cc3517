import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { heartbeatKey, parseHeartbeats, type NodeHeartbeat } from '@livestream/events'
import type { Reaped, StreamsService } from '../plugins/app/streams/streams-service.js'

export interface ReaperOptions {
  queuePrefix: string
  /** A node silent for longer than this has lost its streams. */
  nodeTimeoutMs: number
  intervalMs: number
  /** A stream made live by hand that no publisher reached within this ends (`no-publisher`); 0: never. */
  noPublisherTimeoutMs: number
  /** Platform events not passed on this long after their change are emitted again (`OUTBOX_RELAY_AFTER_MS`). */
  outboxRelayAfterMs: number
  /** Viewer reports older than this leave the event ledger (`VIEWER_LEDGER_RETENTION_MS`); 0: kept. */
  viewerLedgerRetentionMs: number
}

export interface ReapDeps {
  streams: Pick<StreamsService, 'reapLost' | 'reapUnpublished'>
  redis: Redis
  queuePrefix: string
  nodeTimeoutMs: number
}

/**
 * Heartbeats older than this are deleted: their node is long gone (a missing heartbeat and a stale one mean the same
 * to the reaper and to ingest's media sweep), and node ids are often one-off (pod names), so the hash would only grow.
 */
export const HEARTBEAT_FORGET_MS = 24 * 3600_000

/** One round: the nodes' heartbeats from Redis, handed to the streams service, which ends what they lost. */
export async function reapLostStreams(deps: ReapDeps, now = Date.now()): Promise<Reaped[]> {
  return deps.streams.reapLost(await readHeartbeats(deps, now), deps.nodeTimeoutMs, now)
}

/** One round of the other kind: streams made live by hand (`POST /start`) that no publisher reached in time end. */
export async function reapUnpublishedStreams(deps: Pick<ReapDeps, 'streams'>, timeoutMs: number, now = Date.now()): Promise<number[]> {
  if (timeoutMs <= 0) return []
  return deps.streams.reapUnpublished(timeoutMs, now)
}

/** The latest heartbeat of each node, by node id; the long-forgotten ones are deleted on the way. */
async function readHeartbeats(deps: ReapDeps, now: number): Promise<Map<string, NodeHeartbeat>> {
  const key = heartbeatKey(deps.queuePrefix)
  const beats = parseHeartbeats(await deps.redis.hgetall(key))
  const forgotten = [...beats].filter(([, hb]) => now - hb.at > HEARTBEAT_FORGET_MS).map(([nodeId]) => nodeId)
  for (const nodeId of forgotten) beats.delete(nodeId)
  // HDEL by field: a node that beat again in between is deleted too, and is back at its next beat (seconds).
  if (forgotten.length) await deps.redis.hdel(key, ...forgotten)
  return beats
}

/** The ledger's retention runs at most this often (each reaper process; a delete of nothing is one indexed read). */
export const LEDGER_PRUNE_EVERY_MS = 60_000

/**
 * Every `intervalMs`, ends live streams whose ingest node stopped heartbeating (or no longer holds them), and streams
 * made live by hand that never got a publisher within `noPublisherTimeoutMs`; then relays the platform events left in
 * the outbox (every process running the reaper relays; each event is claimed by one). Once a minute it also deletes
 * the viewer reports past `viewerLedgerRetentionMs` from the event ledger.
 */
export default fp(
  async (app, opts: ReaperOptions) => {
    let timer: NodeJS.Timeout | undefined
    let running: Promise<void> | undefined
    let prunedAt = 0
    const tick = async () => {
      try {
        const reaped = await reapLostStreams({ streams: app.streams, redis: app.redis, queuePrefix: opts.queuePrefix, nodeTimeoutMs: opts.nodeTimeoutMs })
        for (const r of reaped) {
          app.metrics.reaperAction(r.reason)
          app.log.warn(r, 'ended a stream its ingest node lost')
        }
        const unpublished = await reapUnpublishedStreams({ streams: app.streams }, opts.noPublisherTimeoutMs)
        for (const streamId of unpublished) {
          app.metrics.reaperAction('no-publisher')
          app.log.warn({ streamId, timeoutMs: opts.noPublisherTimeoutMs }, 'ended a stream started by hand that no publisher reached')
        }
        // Viewer counts of nodes that stopped reporting go stale here (a report refreshes its stream's sum on arrival).
        await app.streams.refreshViewers()
      } catch (err) {
        // MySQL or Redis down: try again next round.
        app.log.warn({ err }, 'reaper round failed')
      }
      // Apart from the above: a round that could not read the heartbeats (Redis away) must not hold back the relay.
      try {
        const relayed = await app.streams.relayOutbox({ afterMs: opts.outboxRelayAfterMs })
        if (relayed.emitted + relayed.failed + relayed.dropped > 0) app.log.info(relayed, 'outbox relay round')
      } catch (err) {
        app.log.warn({ err }, 'outbox relay round failed')
      }
      if (opts.viewerLedgerRetentionMs > 0 && Date.now() - prunedAt >= LEDGER_PRUNE_EVERY_MS) {
        prunedAt = Date.now()
        try {
          const pruned = await app.streams.pruneViewerLedger(opts.viewerLedgerRetentionMs)
          if (pruned > 0) app.log.info({ pruned, retentionMs: opts.viewerLedgerRetentionMs }, 'viewer reports past their retention left the event ledger')
        } catch (err) {
          app.log.warn({ err }, 'event ledger retention round failed')
        }
      }
    }
    app.addHook('onReady', () => {
      timer = setInterval(() => {
        running ??= tick().finally(() => (running = undefined))
      }, opts.intervalMs)
    })
    app.addHook('preClose', async () => {
      clearInterval(timer)
      await running
    })
  },
  { name: 'reaper', dependencies: ['services', 'redis', 'metrics'] }
)
