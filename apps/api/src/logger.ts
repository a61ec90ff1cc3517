import pino, { type DestinationStream } from 'pino'
import { loggableError } from '@livestream/db'

// Stream keys are random UUIDs. A key pasted into a path by mistake (`/streams/<key>`) must not reach the log either.
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi

/**
 * How a request appears in the logs: method, path, request id, address. The query string is dropped whole, not only
 * `streamKey`: a key could arrive under an encoded name (`stream%4Bey`) or in any parameter, and no query of ours is
 * worth the risk. Authorization and cookie headers are not logged at all.
 */
export function requestSerializer(req: { method: string; url: string; id: string; ip?: string }) {
  return { method: req.method, url: requestPath(req.url), reqId: req.id, remoteAddress: req.ip }
}

/** A request URL as it may be logged: no query string, key-shaped segments redacted. */
export function requestPath(url: string): string {
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  return path.replace(UUID, '[redacted]')
}

/**
 * Serializers every api logger uses (buildApp forces them onto any logger it is given). Fastify's own `req` serializer
 * logs the full URL, query string included; pino's `err` serializer logs a failed query's message, which drizzle ends
 * with the query's params (a stream key, a password hash). Whoever logs `{ err }`, the app or a library, gets these.
 */
export const logSerializers = { req: requestSerializer, err: loggableError }

/**
 * The process logger: JSON, with secrets redacted wherever they might appear. Without a destination it writes to
 * stdout asynchronously (lines written while a write is in flight are coalesced, the rest flushed when the process
 * exits): a synchronous write per access line blocks the event loop on a slow pipe.
 */
export function createLogger(level: string, destination: DestinationStream = pino.destination({ dest: 1, sync: false })) {
  return pino(
    {
      level,
      serializers: logSerializers,
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.stream_key', '*.streamKey', '*.token'],
        censor: '[redacted]'
      }
    },
    destination
  )
}
