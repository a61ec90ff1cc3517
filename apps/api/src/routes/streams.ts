import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import {
  createStreamSchema,
  getByKeySchema,
  getStreamSchema,
  joinSchema,
  leaveSchema,
  lifecycleActionSchema,
  listStreamsSchema,
  participantsSchema,
  patchStatusSchema
} from '../schemas/streams.js'
import { participantView, streamView, type StreamRow, type UrlConfig } from '../plugins/app/streams/stream-view.js'
import { documentRoutes } from '../plugins/external/swagger.js'
import { BearerSecurity } from '../schemas/envelope.js'

/** /api/livestream: every route needs a token (checked once for the subtree). */
const streamsRoutes: FastifyPluginAsyncTypebox<{ urls: UrlConfig }> = async (app, { urls }) => {
  app.addHook('onRequest', app.authenticate)
  app.addHook('onRoute', documentRoutes({ tags: ['streams'], security: BearerSecurity }))
  const svc = app.streams
  const ownerView = (row: StreamRow) => streamView(row, urls, { forOwner: true })

  app.post('/streams', { schema: createStreamSchema }, async (request, reply) => {
    const row = await svc.create(request.user.id, request.body.title.trim())
    return reply.code(201).send({ success: true, data: ownerView(row), message: 'stream created' })
  })

  app.get('/streams', { schema: listStreamsSchema }, async (request) => {
    const q = request.query
    const { rows, count } = await svc.list({ page: q.page, limit: q.limit, status: q.status, userId: q.user_id })
    return { success: true, data: rows.map((r) => streamView(r, urls)), message: 'ok', count }
  })

  // Registered before /streams/:id so "key" is never taken for an id.
  app.get('/streams/key', { schema: getByKeySchema }, async (request) => {
    const row = await svc.getByKey(request.user.id, request.query.streamKey)
    return { success: true, data: ownerView(row), message: 'ok' }
  })

  app.get('/streams/:id', { schema: getStreamSchema }, async (request) => {
    const { stream, owner } = await svc.getById(request.params.id)
    return { success: true, data: streamView(stream, urls, { owner, forOwner: stream.userId === request.user.id }), message: 'ok' }
  })

  app.patch('/streams/:id/status', { schema: patchStatusSchema }, async (request) => {
    const { stream } = await svc.transition(request.params.id, request.body.status, { actorUserId: request.user.id })
    return { success: true, data: ownerView(stream), message: `stream is ${stream.status}` }
  })

  app.post('/streams/:id/start', { schema: lifecycleActionSchema }, async (request) => {
    const { stream } = await svc.transition(request.params.id, 'live', { actorUserId: request.user.id })
    return { success: true, data: ownerView(stream), message: 'stream is live' }
  })

  app.post('/streams/:id/end', { schema: lifecycleActionSchema }, async (request) => {
    const { stream } = await svc.transition(request.params.id, 'ended', { actorUserId: request.user.id })
    return { success: true, data: ownerView(stream), message: 'stream ended' }
  })

  app.post('/streams/:id/key/rotate', { schema: lifecycleActionSchema }, async (request) => {
    const stream = await svc.rotateKey(request.user.id, request.params.id)
    return { success: true, data: ownerView(stream), message: 'stream key rotated; the old key no longer works' }
  })

  app.post('/streams/join', { schema: joinSchema }, async (request) => {
    const p = await svc.join(request.body.stream_id, request.user.id)
    return { success: true, data: participantView(p), message: 'joined' }
  })

  app.post('/streams/:id/leave', { schema: leaveSchema }, async (request) => {
    const p = await svc.leave(request.params.id, request.user.id)
    return { success: true, data: participantView(p), message: 'left' }
  })

  app.get('/streams/:id/participants', { schema: participantsSchema }, async (request) => {
    const { rows, count } = await svc.participants(request.params.id, request.query)
    return { success: true, data: rows.map(participantView), message: 'ok', count }
  })
}
export default streamsRoutes
