import fp from 'fastify-plugin'
import jwt from '@fastify/jwt'
import type { FastifyRequest } from 'fastify'
import { UnauthorizedError } from '../../errors.js'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: { sub: string }
    user: { id: number }
  }
}
declare module 'fastify' {
  interface FastifyInstance {
    authenticate: (request: FastifyRequest) => Promise<void>
  }
}

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
    app.decorate('authenticate', async (request: FastifyRequest) => {
      try {
        await request.jwtVerify()
      } catch {
        throw new UnauthorizedError('invalid or expired token')
      }
      const id = request.user.id
      if (!Number.isSafeInteger(id) || id < 1 || !(await exists(id))) {
        throw new UnauthorizedError('invalid or expired token')
      }
    })
  },
  { name: 'auth' }
)
