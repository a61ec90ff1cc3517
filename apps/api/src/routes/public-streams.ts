import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { publicPreflightSchema, publicStreamEventsSchema, publicStreamSchema } from '../schemas/live-updates.js'
import { publicStream } from '../plugins/app/live-updates/live-update.js'
import { streamView, type UrlConfig } from '../plugins/app/streams/stream-view.js'
import { documentRoutes } from '../plugins/external/swagger.js'

/** Playback ids resolved to stream ids: the pair never changes, so it is kept (bounded) for the life of the process. */
const MAX_KNOWN_PLAYBACK_IDS = 10_000

/**
 * `/api/public`: what anyone holding a playback id may know of its stream (the watch page's source), with no token:
 * the playback id is public already. `GET /streams/:playback_id` (JSON) and `GET /streams/:playback_id/events` (SSE,
 * the members' events minus `participants`, capped per client address). Readable from any origin: nothing here is
 * private and no credentials are involved.
 */
const publicStreamsRoutes: FastifyPluginAsyncTypebox<{ urls: UrlConfig; maxPerAddress: number }> = async (app, { urls, maxPerAddress }) => {
  const known = new Map<string, number>()
  const streamIdOf = async (playbackId: string): Promise<number> => {
    const hit = known.get(playbackId)
    if (hit !== undefined) return hit
    const row = await app.streams.getByPlaybackId(playbackId)
    if (known.size >= MAX_KNOWN_PLAYBACK_IDS) known.delete(known.keys().next().value as string)
    known.set(playbackId, row.id)
    return row.id
  }

  app.addHook('onRoute', documentRoutes({ tags: ['public'] }))
  app.addHook('onRequest', (_request, reply, done) => {
    reply.header('access-control-allow-origin', '*')
    done()
  })

  app.get('/streams/:playback_id', { schema: publicStreamSchema }, async (request) => {
    const id = await streamIdOf(request.params.playback_id)
    const { stream } = await app.streams.getById(id).catch((err: unknown) => {
      known.delete(request.params.playback_id)
      throw err
    })
    return { success: true, data: publicStream(streamView(stream, urls)), message: 'ok' }
  })

  // A cross-origin EventSource that reconnects sends Last-Event-ID, which is not a CORS-safelisted header: browsers may
  // ask first.
  app.options('/streams/:playback_id/events', { schema: publicPreflightSchema }, async (_request, reply) => {
    return reply
      .code(204)
      .header('access-control-allow-methods', 'GET')
      .header('access-control-allow-headers', 'last-event-id, cache-control')
      .header('access-control-max-age', '86400')
      .send()
  })

  app.get('/streams/:playback_id/events', { schema: publicStreamEventsSchema }, async (request, reply) => {
    const id = await streamIdOf(request.params.playback_id)
    await app.liveUpdates.open(request, reply, {
      streamId: id,
      audience: 'public',
      holder: `a:${request.ip}`,
      max: maxPerAddress,
      lastEventId: request.headers['last-event-id'] ?? request.query.last_event_id
    })
    return reply
  })
}
export default publicStreamsRoutes
