import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { HttpError, ServiceUnavailableError } from '../../../errors.js'
import { streamView, type UrlConfig } from '../streams/stream-view.js'
import { createConnectionSlots } from './connection-slots.js'
import { ENTRY_ID, liveEventNameOf, publicState, sseFrame, updateOf, type MemberState } from './live-update.js'
import { SseHub, type Audience, type SseClient } from './sse-hub.js'
import { createUpdateLog } from './update-log.js'

export interface LiveUpdatesOptions {
  redisUrl: string
  /** The deployment's prefix (`QUEUE_PREFIX`). */
  prefix: string
  urls: UrlConfig
  heartbeatMs: number
  replayEvents: number
  replayTtlMs: number
}

export interface OpenOptions {
  streamId: number
  audience: Audience
  /** Whose connection cap it counts against: `u:<user id>` or `a:<client address>`. */
  holder: string
  max: number
  /** The `Last-Event-ID` the client sent, if any. */
  lastEventId?: string | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    liveUpdates: {
      /** Answers the request with a live-update stream (or throws: 404, 429, 503 in the envelope, before any byte). */
      open(request: FastifyRequest, reply: FastifyReply, opts: OpenOptions): Promise<void>
      hub: SseHub
    }
  }
}

/** The `retry:` hint: how long a client waits before reconnecting once its stream ends (a restart, a lost proxy). */
export const RETRY_MS = 2_000

/**
 * Live updates (Server-Sent Events) of streams, in every process of the deployment.
 *
 * Feed: each committed change (the platform events) becomes one update, serialized here once for members and once
 * for the public, appended to the stream's log in Redis (its entry id is the SSE id) and published on the
 * deployment's channel, all in one script. This runs in whichever process made the change: an api, the worker, the
 * reaper.
 *
 * Delivery: each api process holds one subscription and its own clients by stream (`SseHub`). A new client is
 * registered first (updates for it are held), then sent what it missed after its `Last-Event-ID` from the log, or,
 * when that id is unknown or gone from the log, a snapshot of the stream read from the database; then what was held,
 * newer than that, then live updates.
 */
export default fp(
  async (app, opts: LiveUpdatesOptions) => {
    // Slots outlive a dead process by three heartbeats at most.
    const slots = createConnectionSlots(app.redis, { prefix: opts.prefix, leaseMs: opts.heartbeatMs * 3 })
    const log = createUpdateLog(app.redis, { prefix: opts.prefix, maxEvents: opts.replayEvents, ttlMs: opts.replayTtlMs })

    // Throws when Redis does not take the update (no offline queue): the event stays in the outbox for the relay.
    app.platformEvents.subscribe(async (event) => {
      if (!liveEventNameOf(event.type)) return
      const update = updateOf(event, await app.streams.participantCount(event.streamId))
      if (update) await log.append(update)
    })

    /** The stream's state now, with the id of the newest update it already includes (read before the row). */
    async function snapshot(streamId: number) {
      const id = await log.latestId(streamId)
      const [row, participants] = await Promise.all([app.streams.getFresh(streamId), app.streams.participantCount(streamId)])
      const member: MemberState = {
        type: 'snapshot',
        timestamp: new Date().toISOString(),
        stream: streamView(row, opts.urls),
        participant_count: participants
      }
      return {
        id,
        member: sseFrame('snapshot', JSON.stringify(member), id),
        public: sseFrame('snapshot', JSON.stringify(publicState(member)), id)
      }
    }

    const hub = new SseHub({
      redisUrl: opts.redisUrl,
      log,
      logger: app.log,
      heartbeatMs: opts.heartbeatMs,
      onHeartbeat: () => slots.refresh(),
      snapshot: (streamId) => snapshot(streamId).catch(() => undefined)
    })

    async function open(request: FastifyRequest, reply: FastifyReply, o: OpenOptions): Promise<void> {
      const slot = await slots.acquire(o.holder, o.max)
      if (!slot) {
        const per = o.audience === 'member' ? 'user' : 'client address'
        throw new HttpError(429, `too many open live-update connections: at most ${o.max} per ${per}`)
      }
      const res = reply.raw
      const client: SseClient = { streamId: o.streamId, audience: o.audience, res, slot, pending: [], lastId: undefined }
      // The client may hang up while its first answer is prepared: then it is removed as soon as it was added.
      let gone = false
      res.once('close', () => {
        gone = true
        hub.remove(client)
      })
      let first: () => void
      try {
        await hub.ready().catch(() => {
          throw new ServiceUnavailableError('live updates are unavailable right now, try again shortly')
        })
        hub.add(client)
        const lastId = o.lastEventId && ENTRY_ID.test(o.lastEventId) ? o.lastEventId : undefined
        const missed = lastId ? await log.since(o.streamId, lastId) : undefined
        if (missed) {
          first = () => {
            client.lastId = lastId
            for (const u of missed) hub.writeUpdate(client, u)
          }
        } else {
          const snap = await snapshot(o.streamId)
          first = () => {
            res.write(o.audience === 'member' ? snap.member : snap.public)
            client.lastId = snap.id
          }
        }
      } catch (err) {
        hub.remove(client)
        throw err
      }
      reply.hijack()
      if (gone || res.destroyed) {
        hub.remove(client)
        return
      }
      // The connection stays open for as long as the client wants: no idle timeout (heartbeats keep it busy), and
      // every frame goes out at once.
      request.raw.socket.setTimeout(0)
      request.raw.socket.setNoDelay(true)
      res.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-store, no-transform',
        'x-accel-buffering': 'no',
        // Once the stream ends (the server closing) the connection goes with it: nothing else was going to use it.
        connection: 'close'
      })
      res.write(`retry: ${RETRY_MS}\n\n`)
      first()
      hub.start(client)
    }

    app.decorate('liveUpdates', { open, hub })
    // Before the server closes: open streams would otherwise hold it open for as long as their clients stay.
    app.addHook('preClose', async () => {
      await hub.close()
    })
  },
  { name: 'live-updates', dependencies: ['services', 'redis'] }
)
