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
export class UnauthorizedError extends HttpError {
  constructor(message = 'authentication required') {
    super(401, message)
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
