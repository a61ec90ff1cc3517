/** A failure with an answer: the error handler turns it into the envelope with this status. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string
  ) {
    super(message)
    this.name = 'HttpError'
  }
}

export class NotFoundError extends HttpError {
  constructor(message = 'not found') {
    super(404, message)
  }
}
export class ForbiddenError extends HttpError {
  constructor(message = 'forbidden') {
    super(403, message)
  }
}
export class ConflictError extends HttpError {
  constructor(message: string) {
    super(409, message)
  }
}
export class UnauthorizedError extends HttpError {
  constructor(message = 'authentication required') {
    super(401, message)
  }
}
/**
 * The token was good but its user is gone (deleted after the auth check's cached lookup): a write naming the user
 * found no row to refer to. The same 401 as any dead token.
 */
export class UserGoneError extends UnauthorizedError {
  constructor(readonly userId: number) {
    super('invalid or expired token')
  }
}
export class ServiceUnavailableError extends HttpError {
  constructor(
    message = 'service temporarily unavailable, try again shortly',
    /** Sent as `Retry-After`. */
    readonly retryAfterSeconds = 5
  ) {
    super(503, message)
  }
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_LOCK_DEADLOCK',
  'ER_QUERY_INTERRUPTED'
])

/** True for errors that mean "a dependency is down or busy", not "this request is wrong". */
export function isUnavailable(err: unknown): boolean {
  let e: unknown = err
  for (let depth = 0; e && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) return true
    const message = (e as { message?: unknown }).message
    if (typeof message === 'string' && /Queue limit reached|Pool is closed|connect ETIMEDOUT|Connection is closed/i.test(message)) return true
    e = (e as { cause?: unknown }).cause
  }
  return false
}
