import type { FastifyPluginAsync } from 'fastify'

/**
 * `GET /metrics`: Prometheus text, for the metrics token or the operator's (`Authorization: Bearer …`; Prometheus sends
 * it with `authorization: { credentials_file: … }` in the scrape config). Hidden from the OpenAPI document: it is for
 * Prometheus, not for the platform's developers.
 */
const metricsRoute: FastifyPluginAsync = async (app) => {
  app.get('/metrics', { schema: { hide: true }, onRequest: app.authenticateMetrics }, async (_request, reply) => {
    const text = await app.metrics.registry.metrics()
    return reply.header('content-type', app.metrics.registry.contentType).header('cache-control', 'no-store').send(text)
  })
}
export default metricsRoute
