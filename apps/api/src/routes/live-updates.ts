import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { liveUpdateTicketSchema, streamEventsSchema } from '../schemas/live-updates.js'
import { documentRoutes } from '../plugins/external/swagger.js'
import { BearerSecurity } from '../schemas/envelope.js'

const EVENTS_ROUTE = '/streams/:id/events'

/**
 * `GET /api/livestream/streams/:id/events`: a stream's live updates for any logged-in user (every stream is readable
 * by every logged-in user, as `GET /streams/:id`); 404 for a missing stream, 429 past the user's connection cap. The
 * user is named by the Authorization header or, for a browser's EventSource (which sends no header), by a ticket from
 * `POST /api/livestream/streams/:id/events/ticket` in the URL.
 */
const liveUpdatesRoutes: FastifyPluginAsyncTypebox<{ maxPerUser: number }> = async (app, { maxPerUser }) => {
  app.addHook('onRequest', async (request) => {
    // A ticket without a header: checked by the events route against its stream, once the id is validated.
    const ticketed = request.method === 'GET' && request.headers.authorization === undefined && (request.query as { ticket?: unknown }).ticket !== undefined
    if (!(ticketed && request.routeOptions.url?.endsWith(EVENTS_ROUTE))) await app.authenticate(request)
  })
  app.addHook('onRoute', documentRoutes({ tags: ['live updates'], security: BearerSecurity }))

  app.get(EVENTS_ROUTE, { schema: streamEventsSchema }, async (request, reply) => {
    const { id } = request.params
    const { ticket, last_event_id: lastEventIdQuery } = request.query
    if (request.headers.authorization === undefined && ticket !== undefined) await app.authenticateTicket(request, ticket, id)
    await app.streams.getById(id)
    await app.liveUpdates.open(request, reply, {
      streamId: id,
      audience: 'member',
      holder: `u:${request.user.id}`,
      max: maxPerUser,
      lastEventId: request.headers['last-event-id'] ?? lastEventIdQuery
    })
    return reply
  })

  // A ticket for the stream's events URL, for clients that cannot send a header (EventSource). Valid TICKET_TTL_MS.
  app.post(`${EVENTS_ROUTE}/ticket`, { schema: liveUpdateTicketSchema }, async (request, reply) => {
    const { id } = request.params
    await app.streams.getById(id)
    const { ticket, expiresAt } = app.issueLiveUpdateTicket(request.user.id, id)
    return reply.code(201).send({
      success: true,
      data: { ticket, expires_at: expiresAt.toISOString(), events_url: `${app.prefix}/streams/${id}/events?ticket=${ticket}` },
      message: 'live-update ticket issued'
    })
  })
}
export default liveUpdatesRoutes
