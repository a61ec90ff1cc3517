import fp from 'fastify-plugin'
import { requestPath } from '../../logger.js'

/**
 * One access line per request, written when the answer is sent, instead of Fastify's two ("incoming request" and
 * "request completed", each serializing the request). A flat object of five fields: pino writes it without a
 * serializer. The request id comes from the request's logger; the path is logged without its query string and with
 * key-shaped segments redacted (see logger.ts). At the default level this halved `GET /streams/:id`'s throughput.
 */
export default fp(
  async (app) => {
    // At debug, the arrival too (what a shutdown test waits for: requests received, not yet answered).
    const arrivals = app.log.level === 'debug' || app.log.level === 'trace'
    if (arrivals) app.addHook('onRequest', (request, _reply, done) => {
      request.log.debug({ method: request.method, url: requestPath(request.url) }, 'incoming request')
      done()
    })
    app.addHook('onResponse', (request, reply, done) => {
      request.log.info(
        { method: request.method, url: requestPath(request.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10, ip: request.ip },
        'request'
      )
      done()
    })
  },
  { name: 'access-log' }
)
