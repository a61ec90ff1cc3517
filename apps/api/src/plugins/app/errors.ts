import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { isUnavailable } from '@livestream/db'
import { HttpError, ServiceUnavailableError } from '../../errors.js'
import { DomainError, type DomainErrorKind } from './domain-errors.js'
import { SECURITY_HEADERS } from './security-headers.js'

const fail = (message: string) => ({ success: false as const, data: null, message })

/** What the domain refuses, as HTTP: the one place a domain error gets a status. */
const DOMAIN_STATUS: Record<DomainErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  'not-found': 404,
  conflict: 409
}

/**
 * The one mapping from errors to answers. Client mistakes keep their message; 5xx answers are generic and the detail
 * goes to the log with the request id (the logger's `err` serializer, loggableError, strips query params from it).
 * Domain errors by their kind; a dependency that is down (the database's classifier says so) is a 503, not a 500.
 */
export default fp(
  async (app) => {
    app.setErrorHandler((err: FastifyError, request, reply) => {
      if (err instanceof ServiceUnavailableError) {
        return reply.code(503).header('retry-after', String(err.retryAfterSeconds)).send(fail(err.message))
      }
      if (err instanceof DomainError) {
        return reply.code(DOMAIN_STATUS[err.kind]).send(fail(err.message))
      }
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

    // The path is not echoed: an answer never reflects what the client sent (it may be a key, or markup).
    app.setNotFoundHandler((request, reply) => {
      reply.code(404).send(fail(`route not found: no ${request.method} route at this path`))
    })
  },
  { name: 'error-handler' }
)

const FRAMEWORK_ERRORS: Record<string, [number, string]> = {
  FST_ERR_MAX_PARAM_LENGTH: [414, 'a path segment is too long'],
  FST_ERR_BAD_URL: [400, 'the path is not a valid URL']
}

/**
 * For what Fastify's router refuses before any hook runs (a path segment over `maxParamLength`, bad percent-encoding).
 * Fastify's own answer is outside the envelope, without our headers, and quotes the path back.
 */
export function frameworkErrorHandler(err: FastifyError, _request: FastifyRequest, reply: FastifyReply) {
  const [status, message] = FRAMEWORK_ERRORS[err.code] ?? [400, 'bad request']
  reply.headers(SECURITY_HEADERS).code(status).send(fail(message))
}

/**
 * `Expect:` other than `100-continue`: Node answers a bare 417 itself unless someone listens for this. Ours is the
 * same status in the envelope with our headers.
 */
export function expectationHandler(_req: IncomingMessage, res: ServerResponse) {
  const body = JSON.stringify(fail('the Expect header is not supported'))
  res.writeHead(417, {
    ...SECURITY_HEADERS,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    connection: 'close'
  })
  res.end(body)
}

const CLIENT_ERRORS: Record<string, [number, string, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'the request took too long to arrive'],
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'request headers are too large']
}

const RAW_SECURITY_HEADERS = Object.entries(SECURITY_HEADERS)
  .map(([name, value]) => `${name}: ${value}\r\n`)
  .join('')

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
      `HTTP/1.1 ${status} ${reason}\r\n${RAW_SECURITY_HEADERS}Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
    )
  }
  socket.destroy()
}
