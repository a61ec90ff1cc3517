import { createHmac, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import jwt from '@fastify/jwt'
import type { FastifyRequest } from 'fastify'
import { UnauthorizedError } from '../../errors.js'
import { UserGoneError } from '../app/domain-errors.js'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: { sub: string }
    user: { id: number }
  }
}
declare module 'fastify' {
  interface FastifyInstance {
    authenticate: (request: FastifyRequest) => Promise<void>
    /** A ticket that lets `userId` open one stream's live updates without a header (see `liveUpdateTickets`). */
    issueLiveUpdateTicket: (userId: number, streamId: number) => { ticket: string; expiresAt: Date }
    /** Authenticates a request by a live-update ticket for `streamId` instead of its Authorization header. */
    authenticateTicket: (request: FastifyRequest, ticket: string, streamId: number) => Promise<void>
    /** Forget that a user exists (after deleting it here): its tokens stop at once in this process. */
    forgetUser: (id: number) => void
  }
}

const BEARER = /^Bearer +([A-Za-z0-9_.=-]{1,4096})$/i
/** How long a live-update ticket opens connections (EventSource's reconnections included). */
export const TICKET_TTL_MS = 60_000
/** `lt1.<user id>.<stream id>.<expiry, epoch s>.<base64url HMAC-SHA256>`: not a JWT, so never a bearer token. */
export const TICKET_PATTERN = '^lt1\\.[0-9]{1,16}\\.[0-9]{1,16}\\.[0-9]{1,12}\\.[A-Za-z0-9_-]{43}$'

/**
 * Live-update tickets: a browser's EventSource cannot send an Authorization header, so a logged-in client trades its
 * token for a ticket naming one stream, valid for TICKET_TTL_MS, and puts it in the events URL (`?ticket=`; query
 * strings are never logged). Signed with a key derived from the JWT secret for this use alone: a ticket is no token
 * anywhere else, and a token is no ticket.
 */
export function liveUpdateTickets(secret: string) {
  const key = createHmac('sha256', secret).update('circle-livestream live-update ticket v1').digest()
  const sign = (body: string) => createHmac('sha256', key).update(body).digest('base64url')
  return {
    issue(userId: number, streamId: number, now = Date.now()): { ticket: string; expiresAt: Date } {
      const exp = Math.ceil((now + TICKET_TTL_MS) / 1000)
      const body = `lt1.${userId}.${streamId}.${exp}`
      return { ticket: `${body}.${sign(body)}`, expiresAt: new Date(exp * 1000) }
    },
    /** The user a ticket was issued to, when it is genuine, for `streamId` and unexpired; else null. */
    verify(ticket: string, streamId: number, now = Date.now()): number | null {
      const m = /^(lt1\.([0-9]{1,16})\.([0-9]{1,16})\.([0-9]{1,12}))\.([A-Za-z0-9_-]{43})$/.exec(ticket)
      if (!m) return null
      const [, body, user, stream, exp, mac] = m as unknown as [string, string, string, string, string, string]
      const want = Buffer.from(sign(body))
      const got = Buffer.from(mac)
      if (got.length !== want.length || !timingSafeEqual(got, want)) return null
      if (Number(stream) !== streamId || Number(exp) * 1000 <= now) return null
      const id = Number(user)
      return Number.isSafeInteger(id) && id >= 1 ? id : null
    }
  }
}
const TOKEN_CACHE_MS = 60_000
const TOKEN_CACHE_SIZE = 10_000

/**
 * HS256 only (pinned: `none` and RS/HS confusion are refused), `sub` and `exp` required, `nbf` honoured. Tokens from
 * the platform's identity provider signed with the same secret pass the same way. The user must still exist.
 */
export default fp(
  async (app, opts: { secret: string; expiresIn: string; userExists: (id: number) => Promise<boolean>; userCacheMs: number }) => {
    // Users known to exist, briefly: most requests skip the lookup. A deleted user's tokens stop within userCacheMs.
    const known = new Map<number, number>()
    const exists = async (id: number) => {
      const until = known.get(id)
      if (until !== undefined && until > Date.now()) return true
      if (!(await opts.userExists(id))) return false
      if (opts.userCacheMs > 0) {
        if (known.size > 100_000) known.clear()
        known.set(id, Date.now() + opts.userCacheMs)
      }
      return true
    }
    await app.register(jwt, {
      secret: opts.secret,
      sign: { algorithm: 'HS256', expiresIn: opts.expiresIn },
      verify: { algorithms: ['HS256'], requiredClaims: ['sub', 'exp'] },
      formatUser: (payload) => ({ id: Number(payload.sub) })
    })
    // Tokens already verified, by their exact text: a repeat skips the HMAC and the JSON decoding. An entry lives
    // until the token's own expiry or TOKEN_CACHE_MS, whichever is first, so a cached token expires on time.
    const verified = new Map<string, { id: number; until: number }>()
    const verify = (token: string, now: number): number => {
      const hit = verified.get(token)
      if (hit && hit.until > now) return hit.id
      let payload: { sub: string; exp: number }
      try {
        payload = app.jwt.verify<{ sub: string; exp: number }>(token)
      } catch {
        throw new UnauthorizedError('invalid or expired token')
      }
      const id = Number(payload.sub)
      if (!Number.isSafeInteger(id) || id < 1) throw new UnauthorizedError('invalid or expired token')
      if (verified.size >= TOKEN_CACHE_SIZE) verified.delete(verified.keys().next().value as string)
      verified.set(token, { id, until: Math.min(payload.exp * 1000, now + TOKEN_CACHE_MS) })
      return id
    }
    // A request that found its user gone (a write whose foreign key failed) ends the cached belief that it exists.
    app.addHook('onError', (_request, _reply, err, done) => {
      if (err instanceof UserGoneError) known.delete(err.userId)
      done()
    })
    app.decorate('forgetUser', (id: number) => {
      known.delete(id)
    })
    app.decorate('authenticate', async (request: FastifyRequest) => {
      const match = BEARER.exec(request.headers.authorization ?? '')
      if (!match) throw new UnauthorizedError('invalid or expired token')
      const id = verify(match[1]!, Date.now())
      request.user = { id }
      if (!(await exists(id))) throw new UnauthorizedError('invalid or expired token')
    })
    const tickets = liveUpdateTickets(opts.secret)
    app.decorate('issueLiveUpdateTicket', (userId: number, streamId: number) => tickets.issue(userId, streamId))
    app.decorate('authenticateTicket', async (request: FastifyRequest, ticket: string, streamId: number) => {
      const id = tickets.verify(ticket, streamId)
      if (id === null || !(await exists(id))) throw new UnauthorizedError('invalid or expired ticket')
      request.user = { id }
    })
  },
  { name: 'auth' }
)
