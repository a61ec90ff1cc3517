import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import type { FastifyError } from 'fastify'
import { HttpError, isUnavailable } from '../../errors.js'

const fail = (message: string) => ({ success: false as const, data: null, message })

/**
 * The one mapping from errors to answers. Client mistakes keep their message; 5xx answers are generic and the detail
 * goes to the log with the request id (the logger's `err` serializer, loggableError, strips query params from it).
 * A dependency that is down is a 503, not a 500.
 */
export default fp(
  async (app) => {
    app.setErrorHandler((err: FastifyError, request, reply) => {
      if (err instanceof HttpError) {
        return reply.code(err.statusCode).send(fail(err.message))
      }
      if (err.validation) {
        return reply.code(400).send(fail(err.message))
      }
      if (isUnavailable(err)) {
        request.log.warn({ err }, 'dependency unavailable')
        return reply.code(503).header('retry-after', '5').send(fail('service temporarily unavailable, try again shortly'))
      }
      const status = err.statusCode ?? 500
      if (status >= 400 && status < 500) {
        // Fastify's own client errors: bad JSON, body too large, wrong content type, rate limit.
        const message =
          err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError
            ? 'body is not valid JSON'
            : err.message
        return reply.code(status).send(fail(message))
      }
      request.log.error({ err }, 'unhandled error')
      return reply.code(500).send(fail('internal server error'))
    })

    app.setNotFoundHandler((request, reply) => {
      reply.code(404).send(fail(`route ${request.method} ${request.url.split('?')[0]} not found`))
    })
  },
  { name: 'error-handler' }
)

const CLIENT_ERRORS: Record<string, [number, string, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'the request took too long to arrive'],
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'request headers are too large']
}

/**
 * For errors Node raises on the socket, before any route runs: the headers or the whole request took longer than the
 * configured timeouts (a slow client), or the bytes are not HTTP. Fastify's default answers these outside the envelope;
 * ours answers in it, then closes the connection either way.
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: Socket) {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const [status, reason, message] = CLIENT_ERRORS[err.code ?? ''] ?? [400, 'Bad Request', 'malformed HTTP request']
  // A response already under way cannot be followed by another one on the same socket.
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true
  if (socket.writable && !inFlight) {
    const body = JSON.stringify(fail(message))
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
    )
  }
  socket.destroy()
}
