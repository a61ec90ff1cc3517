import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { HttpError, UnauthorizedError } from '../../../errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Lets the request through when it carries the operator credential (bearer, or the browser session cookie). */
    authenticateOperator: (request: FastifyRequest) => Promise<void>
    /** The same for `GET /metrics`: the metrics token or the operator's. */
    authenticateMetrics: (request: FastifyRequest) => Promise<void>
    /** Starts a browser session for the operator (after a login with the token): an HttpOnly cookie. */
    startOperatorSession: (request: FastifyRequest, reply: FastifyReply) => void
    /** Throws unless `token` is the operator token (compared in constant time): 401, or 403 when none is configured. */
    verifyOperatorToken: (token: string) => void
  }
}

export interface OperatorAuthOptions {
  /** OPERATOR_TOKEN; null: operator access is not configured and every operator route answers 403. */
  operatorToken: string | null
  /** METRICS_TOKEN: may read /metrics and nothing else. */
  metricsToken: string | null
  /** How long a browser session lasts. */
  sessionMs?: number
}

export const OPERATOR_COOKIE = 'ls_operator'
const BEARER = /^Bearer +(\S{1,4096})$/i
const DEFAULT_SESSION_MS = 8 * 3600_000

/** A fixed-length digest, so comparing never leaks the secret's length and timingSafeEqual never throws. */
const digest = (text: string) => createHash('sha256').update(text).digest()
const sameSecret = (given: string, expected: Buffer) => timingSafeEqual(digest(given), expected)

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

/**
 * Who is an operator: whoever holds `OPERATOR_TOKEN`, a credential of its own (not a user role: the platform's users
 * come from its identity provider, and nothing there should reach the queue's retry and delete buttons). It is sent as
 * `Authorization: Bearer <token>`; a browser may trade it once at `POST /admin/login` for a session cookie (HttpOnly,
 * SameSite=Strict, path `/admin`, `expiry.hmac` under the token, so changing the token ends every session).
 * Answers: no operator token configured → 403; a missing or wrong credential → 401; both in the envelope.
 */
export default fp(
  async (app, opts: OperatorAuthOptions) => {
    const operator = opts.operatorToken === null ? null : digest(opts.operatorToken)
    const metrics = opts.metricsToken === null ? null : digest(opts.metricsToken)
    const sessionMs = opts.sessionMs ?? DEFAULT_SESSION_MS
    const notConfigured = () => new HttpError(403, 'operator access is not configured (set OPERATOR_TOKEN)')
    const bearerOf = (request: FastifyRequest) => BEARER.exec(request.headers.authorization ?? '')?.[1]

    const sessionMac = (expiry: string) => createHmac('sha256', opts.operatorToken ?? '').update(`operator-session:${expiry}`).digest('base64url')
    const validSession = (value: string | undefined): boolean => {
      if (!value || opts.operatorToken === null) return false
      const dot = value.indexOf('.')
      const expiry = value.slice(0, dot)
      if (dot === -1 || !/^\d{1,15}$/.test(expiry) || Number(expiry) < Date.now()) return false
      return timingSafeEqual(digest(value.slice(dot + 1)), digest(sessionMac(expiry)))
    }

    app.decorate('verifyOperatorToken', (token: string) => {
      if (!operator) throw notConfigured()
      if (!sameSecret(token, operator)) throw new UnauthorizedError('operator credentials required')
    })

    app.decorate('authenticateOperator', async (request: FastifyRequest) => {
      if (!operator) throw notConfigured()
      const bearer = bearerOf(request)
      if (bearer !== undefined ? sameSecret(bearer, operator) : validSession(cookieValue(request.headers.cookie, OPERATOR_COOKIE))) return
      throw new UnauthorizedError('operator credentials required')
    })

    app.decorate('authenticateMetrics', async (request: FastifyRequest) => {
      if (!operator && !metrics) throw new HttpError(403, 'metrics access is not configured (set METRICS_TOKEN or OPERATOR_TOKEN)')
      const bearer = bearerOf(request)
      if (bearer !== undefined && ((metrics && sameSecret(bearer, metrics)) || (operator && sameSecret(bearer, operator)))) return
      throw new UnauthorizedError('metrics credentials required')
    })

    app.decorate('startOperatorSession', (request: FastifyRequest, reply: FastifyReply) => {
      const expiry = String(Date.now() + sessionMs)
      const secure = request.protocol === 'https' ? '; Secure' : ''
      reply.header(
        'set-cookie',
        `${OPERATOR_COOKIE}=${expiry}.${sessionMac(expiry)}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(sessionMs / 1000)}${secure}`
      )
    })
  },
  { name: 'operator-auth' }
)
