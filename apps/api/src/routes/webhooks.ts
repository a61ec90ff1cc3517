import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import {
  createWebhookSchema,
  deleteWebhookSchema,
  deliveriesSchema,
  enableWebhookSchema,
  getWebhookSchema,
  listWebhooksSchema,
  pingWebhookSchema,
  rotateSecretSchema,
  updateWebhookSchema
} from '../schemas/webhooks.js'
import { deliveryView, endpointView } from '../plugins/app/webhooks/webhook-view.js'
import { documentRoutes } from '../plugins/external/swagger.js'
import { BearerSecurity } from '../schemas/envelope.js'

/** /api/webhooks: a user's own endpoints; every route needs a token, and someone else's endpoint is a 404. */
const webhooksRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRequest', app.authenticate)
  app.addHook('onRoute', documentRoutes({ tags: ['webhooks'], security: BearerSecurity }))
  const svc = app.webhooks

  app.post('/', { schema: createWebhookSchema }, async (request, reply) => {
    const b = request.body
    const { endpoint, secret } = await svc.create(request.user.id, { url: b.url, description: b.description?.trim() ?? null, eventTypes: b.event_types })
    return reply
      .code(201)
      .send({ success: true, data: { ...endpointView(endpoint), secret }, message: 'webhook endpoint created; keep the secret: it is not shown again' })
  })

  app.get('/', { schema: listWebhooksSchema }, async (request) => {
    const rows = await svc.list(request.user.id)
    return { success: true, data: rows.map((r) => endpointView(r)), message: 'ok', count: rows.length }
  })

  app.get('/:id', { schema: getWebhookSchema }, async (request) => {
    return { success: true, data: endpointView(await svc.get(request.user.id, request.params.id)), message: 'ok' }
  })

  app.patch('/:id', { schema: updateWebhookSchema }, async (request) => {
    const b = request.body
    const endpoint = await svc.update(request.user.id, request.params.id, {
      url: b.url,
      description: b.description === undefined || b.description === null ? b.description : b.description.trim(),
      eventTypes: b.event_types
    })
    return { success: true, data: endpointView(endpoint), message: 'webhook endpoint updated' }
  })

  app.delete('/:id', { schema: deleteWebhookSchema }, async (request) => {
    await svc.remove(request.user.id, request.params.id)
    return { success: true, data: null, message: 'webhook endpoint deleted' }
  })

  app.post('/:id/rotate-secret', { schema: rotateSecretSchema }, async (request) => {
    const { endpoint, secret } = await svc.rotateSecret(request.user.id, request.params.id)
    return {
      success: true,
      data: { ...endpointView(endpoint), secret },
      message: 'secret rotated; deliveries are signed with both secrets until previous_secret_expires_at'
    }
  })

  app.post('/:id/enable', { schema: enableWebhookSchema }, async (request) => {
    return { success: true, data: endpointView(await svc.enable(request.user.id, request.params.id)), message: 'webhook endpoint enabled' }
  })

  app.post('/:id/ping', { schema: pingWebhookSchema }, async (request) => {
    const r = await svc.ping(request.user.id, request.params.id)
    return {
      success: true,
      data: { event_id: r.eventId, delivered: r.ok, http_status: r.httpStatus, error: r.error, duration_ms: r.durationMs },
      message: r.ok ? 'ping delivered' : 'ping not delivered'
    }
  })

  app.get('/:id/deliveries', { schema: deliveriesSchema }, async (request) => {
    const { rows, count } = await svc.deliveries(request.user.id, request.params.id, request.query)
    return { success: true, data: rows.map(deliveryView), message: 'ok', count }
  })
}
export default webhooksRoutes
