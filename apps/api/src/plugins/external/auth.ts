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
    /** Forget that a user exists (after deleting it here): its tokens stop at once in this process. */
    forgetUser: (id: number) => void
  }
}

const BEARER = /^Bearer +([A-Za-z0-9_.=-]{1,4096})$/i
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
  },
  { name: 'auth' }
)
