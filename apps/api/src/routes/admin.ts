import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import { createBullBoard } from '@bull-board/api'
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter'
import { FastifyAdapter } from '@bull-board/fastify'
import { HttpError } from '../errors.js'
import { OPERATOR_COOKIE } from '../plugins/app/operators/operator-auth.js'

export const BOARD_PATH = '/admin/queues'

const fail = (message: string) => ({ success: false as const, data: null, message })

// Bull Board's page: its own scripts and styles (inline styles too: the loading spinner and React's), data: images,
// calls to its own API. Its Google Fonts link is refused (system fonts instead): nothing loads from another origin.
const BOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self' data:; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
// The login page: a form posting to itself, nothing else.
const LOGIN_CSP = "default-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

const LOGIN_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex"><title>Operator login</title></head>
<body>
<h1>Operator login</h1>
<p>Paste the operator token (<code>OPERATOR_TOKEN</code>). The browser keeps an HttpOnly session cookie for the admin pages.</p>
<form method="post" action="/admin/login">
<label>Operator token <input type="password" name="token" autocomplete="off" required></label>
<button type="submit">Open the queues</button>
</form>
</body></html>
`

/**
 * Operator pages, all behind the operator credential (see plugins/app/operators/operator-auth.ts):
 * - `/admin/queues`: Bull Board over every observed queue: jobs by state, their data and errors, retry, promote,
 *   clean. Every request needs `Authorization: Bearer <OPERATOR_TOKEN>` or the session cookie.
 * - `/admin/login`: a form that trades the token for the session cookie, for a browser (which cannot add a bearer
 *   header to page loads); `POST /admin/logout` drops it.
 * A refused request gets 401 (no or wrong credential) or 403 (OPERATOR_TOKEN unset) in the envelope.
 */
const adminRoutes: FastifyPluginAsync<{ loginRateLimit: { max: number; timeWindow: number } }> = async (app, opts) => {
  const loginBudget = app.rateLimit(opts.loginRateLimit)

  await app.register(async (login) => {
    // The form posts urlencoded; only these routes read that content type.
    login.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 8_192 }, (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)))
    })
    login.addHook('onRequest', (_request, reply, done) => {
      reply.header('content-security-policy', LOGIN_CSP).header('cache-control', 'no-store')
      done()
    })
    login.get('/admin/login', { schema: { hide: true } }, async (_request, reply) => reply.type('text/html; charset=utf-8').send(LOGIN_PAGE))
    login.post(
      '/admin/login',
      {
        schema: { hide: true, body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 4096 }) }) },
        onRequest: loginBudget
      },
      async (request, reply) => {
        const { token } = request.body as { token: string }
        app.verifyOperatorToken(token)
        app.startOperatorSession(request, reply)
        return reply.code(303).header('location', `${BOARD_PATH}/`).send({ success: true, data: null, message: 'operator session started' })
      }
    )
    login.post('/admin/logout', { schema: { hide: true } }, async (_request, reply) =>
      reply
        .header('set-cookie', `${OPERATOR_COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0`)
        .send({ success: true, data: null, message: 'operator session ended' })
    )
  })

  await app.register(async (board) => {
    // Bull Board sets an error handler of its own inside its plugin: refusals are answered here, in the envelope.
    board.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
      try {
        await app.authenticateOperator(request)
      } catch (err) {
        const status = err instanceof HttpError ? err.statusCode : 401
        return reply.code(status).send(fail(err instanceof HttpError ? err.message : 'operator credentials required'))
      }
      reply.header('content-security-policy', BOARD_CSP).header('cache-control', 'no-store')
    })
    const serverAdapter = new FastifyAdapter()
    serverAdapter.setBasePath(BOARD_PATH)
    createBullBoard({
      queues: [...app.observedQueues.values()].map((queue) => new BullMQAdapter(queue)),
      serverAdapter,
      options: { uiConfig: { boardTitle: 'circle-livestream queues' } }
    })
    await board.register(serverAdapter.registerPlugin(), { prefix: BOARD_PATH })
  })
}
export default adminRoutes
