import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { deleteMeSchema, loginSchema, meSchema, registerSchema } from '../schemas/auth.js'
import { NotFoundError } from '../errors.js'
import { userView } from '../plugins/app/users/users-service.js'
import { documentRoutes } from '../plugins/external/swagger.js'

/** /api/auth: register, login, me (read or delete). Register and login share one rate-limit budget per address. */
const auth: FastifyPluginAsyncTypebox<{ rateLimit: { max: number; timeWindow: number } }> = async (app, opts) => {
  // One limiter for both routes: a route's own `config.rateLimit` counts apart, so an address could spend its budget
  // twice, once logging in and once registering (both cost an argon2 hash).
  const passwordBudget = app.rateLimit(opts.rateLimit)
  app.addHook('onRoute', documentRoutes({ tags: ['auth'] }))

  app.post('/register', { schema: registerSchema, onRequest: passwordBudget }, async (request, reply) => {
    const { email, password, display_name } = request.body
    const user = await app.users.register(email, password, display_name.trim())
    const token = await reply.jwtSign({ sub: String(user.id) })
    return reply.code(201).send({ success: true, data: { user: userView(user), token }, message: 'registered' })
  })

  app.post('/login', { schema: loginSchema, onRequest: passwordBudget }, async (request, reply) => {
    const user = await app.users.login(request.body.email, request.body.password)
    const token = await reply.jwtSign({ sub: String(user.id) })
    return { success: true, data: { user: userView(user), token }, message: 'logged in' }
  })

  app.get('/me', { schema: meSchema, onRequest: app.authenticate }, async (request) => {
    const user = await app.users.findById(request.user.id)
    if (!user) throw new NotFoundError('user not found')
    return { success: true, data: userView(user), message: 'ok' }
  })

  // Deletes the caller's account with its streams and participations (the walkthrough removes what it made this way).
  app.delete('/me', { schema: deleteMeSchema, onRequest: app.authenticate }, async (request) => {
    const removed = await app.users.remove(request.user.id)
    app.forgetUser(request.user.id)
    return { success: true, data: null, message: `account deleted with ${removed.length} stream(s)` }
  })
}
export default auth
