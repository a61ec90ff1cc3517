import fp from 'fastify-plugin'
import { requestPath } from '../../logger.js'

/**
 * One access line per request, written when the answer is sent, instead of Fastify's two ("incoming request" and
 * "request completed", each serializing the request). A flat object of six fields: pino writes it without a
 * serializer. The path is logged without its query string and with key-shaped segments redacted (see logger.ts).
 *
 * The line goes through a child of the app's logger (same destination, level and bindings) made once, without the
 * redaction paths: with wildcard paths (`*.password`) pino runs every value of every line through a redactor, which
 * was 6 % of the api's CPU under `GET /streams/:id`. Nothing here can match those paths: the keys are fixed, the
 * values strings and numbers, the path already stripped of its query and keys. The request id is written as a field
 * (the value Fastify's per-request logger binds), so the line reads as before.
 */
export default fp(
  async (app) => {
    // At debug, the arrival too (what a shutdown test waits for: requests received, not yet answered).
    const arrivals = app.log.level === 'debug' || app.log.level === 'trace'
    if (arrivals) app.addHook('onRequest', (request, _reply, done) => {
      request.log.debug({ method: request.method, url: requestPath(request.url) }, 'incoming request')
      done()
    })
    const access = app.log.child({}, { redact: { paths: [] } })
    app.addHook('onResponse', (request, reply, done) => {
      access.info(
        { reqId: request.id, method: request.method, url: requestPath(request.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10, ip: request.ip },
        'request'
      )
      done()
    })
  },
  { name: 'access-log' }
)
