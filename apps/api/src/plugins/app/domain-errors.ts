/**
 * What the domain (streams, users) refuses, by kind. The domain knows no HTTP: the error handler (`errors.ts`) is the
 * one place a kind becomes a status.
 */
export type DomainErrorKind = 'invalid' | 'unauthenticated' | 'forbidden' | 'not-found' | 'conflict'

export class DomainError extends Error {
  constructor(
    readonly kind: DomainErrorKind,
    message: string
  ) {
    super(message)
    this.name = 'DomainError'
  }
}

/**
 * The token was good but its user is gone (deleted after the auth check's cached lookup): a write naming the user
 * found no row to refer to. Answered like any dead token; the auth plugin forgets the user.
 */
export class UserGoneError extends DomainError {
  constructor(readonly userId: number) {
    super('unauthenticated', 'invalid or expired token')
    this.name = 'UserGoneError'
  }
}
