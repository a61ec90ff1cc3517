import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { streamEventsSchema } from '../schemas/live-updates.js'
import { documentRoutes } from '../plugins/external/swagger.js'
import { BearerSecurity } from '../schemas/envelope.js'

/**
 * `GET /api/livestream/streams/:id/events`: a stream's live updates for any logged-in user (every stream is readable
 * by every logged-in user, as `GET /streams/:id`); 404 for a missing stream, 429 past the user's connection cap.
 */
const liveUpdatesRoutes: FastifyPluginAsyncTypebox<{ maxPerUser: number }> = async (app, { maxPerUser }) => {
  app.addHook('onRequest', app.authenticate)
  app.addHook('onRoute', documentRoutes({ tags: ['live updates'], security: BearerSecurity }))

  app.get('/streams/:id/events', { schema: streamEventsSchema }, async (request, reply) => {
    const { id } = request.params
    await app.streams.getById(id)
    await app.liveUpdates.open(request, reply, {
      streamId: id,
      audience: 'member',
      holder: `u:${request.user.id}`,
      max: maxPerUser,
      lastEventId: request.headers['last-event-id']
    })
    return reply
  })
}
export default liveUpdatesRoutes
