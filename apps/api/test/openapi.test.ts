/**
 * The OpenAPI check (CI runs it with every `pnpm test`). It builds the app, reads the document at /docs/json, validates
 * it against the OpenAPI 3.1 schema with @seriousme/openapi-schema-validator, and walks every registered route.
 *
 * The rules a route must follow, unless it says `schema: { hide: true }` (left out of the document on purpose: HTML
 * pages, SSE streams, assets, Bull Board, /metrics):
 * - it has a schema with `response`, declaring at least one 2xx answer and the errors (`4xx`, or each 4xx it gives);
 * - a path with parameters (`/:id`) declares `params`;
 * - every response declared is an object schema (the envelope), or names its media types (`content`: an SSE stream's
 *   `text/event-stream`), except 204;
 * - a route under /api/livestream or /api/webhooks (a user's token required) declares `security`.
 * HEAD routes are Fastify's copies of GET routes and follow them. A new route that breaks a rule fails this file,
 * naming the route and the rule.
 */
import t from 'tap'
import type { RouteOptions } from 'fastify'
import { Validator } from '@seriousme/openapi-schema-validator'
import { build } from './helper.js'

interface Problem {
  route: string
  rule: string
}

/** Subtrees whose every route needs a user's token. */
const TOKEN_PREFIXES = ['/api/livestream/', '/api/webhooks']

export function routeProblems(routes: readonly RouteOptions[]): Problem[] {
  const problems: Problem[] = []
  for (const r of routes) {
    const methods = ([] as string[]).concat(r.method)
    if (methods.every((m) => m === 'HEAD')) continue
    const name = `${methods.join(',')} ${r.url}`
    const schema = r.schema as (Record<string, unknown> & { hide?: boolean; response?: Record<string, unknown> }) | undefined
    if (schema?.hide === true) continue
    if (!schema) {
      problems.push({ route: name, rule: 'has no schema (add one, or `schema: { hide: true }` for a route outside the API document)' })
      continue
    }
    const statuses = Object.keys(schema.response ?? {})
    if (!statuses.some((s) => /^2(\d\d|xx)$/i.test(s))) problems.push({ route: name, rule: 'declares no 2xx response' })
    if (!statuses.some((s) => /^4(\d\d|xx)$/i.test(s))) problems.push({ route: name, rule: 'declares no 4xx response (the errors, in the envelope)' })
    for (const [status, body] of Object.entries(schema.response ?? {})) {
      const b = body as { type?: unknown; content?: unknown }
      if (status !== '204' && b.type !== 'object' && (typeof b.content !== 'object' || b.content === null)) {
        problems.push({ route: name, rule: `response ${status} is neither an object (the envelope) nor a declared media type` })
      }
    }
    if (/:\w/.test(r.url) && !schema.params) problems.push({ route: name, rule: 'has path parameters but no params schema' })
    if (TOKEN_PREFIXES.some((p) => r.url.startsWith(p)) && !schema.security) problems.push({ route: name, rule: 'needs a token but declares no security' })
  }
  return problems
}

const app = await build(t)

t.test('the OpenAPI document is valid OpenAPI 3.1', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/docs/json' })
  t.equal(res.statusCode, 200)
  const doc = res.json()
  t.equal(doc.openapi, '3.1.0')
  const result = await new Validator().validate(doc)
  t.same(result.errors ?? [], [], 'no validation errors')
  t.equal(result.valid, true)
  const broken = structuredClone(doc)
  broken.paths['/api/livestream/streams/{id}'].get.responses['200'] = { content: 'not a media map' }
  t.equal((await new Validator().validate(broken)).valid, false, 'the validator does refuse a broken document')
})

t.test('DOCS_ENABLED=false serves neither the document nor the UI', async (t) => {
  const bare = await build(t, { DOCS_ENABLED: 'false' })
  for (const url of ['/docs', '/docs/json', '/docs/static/swagger-ui-bundle.js']) {
    t.equal((await bare.inject({ method: 'GET', url })).statusCode, 404, url)
  }
})

t.test('every route follows the documentation rules or is explicitly hidden', async (t) => {
  t.same(routeProblems(app.routeCatalog), [])
  t.ok(app.routeCatalog.length > 10, 'the routes were seen')
})

t.test('the rules catch a route without a schema, without errors, or with undeclared params', async (t) => {
  const handler = async () => null
  const problems = routeProblems([
    { method: 'GET', url: '/a', handler },
    { method: 'GET', url: '/b/:id', handler, schema: { response: { 200: { type: 'object' } } } },
    { method: 'GET', url: '/c', handler, schema: { hide: true } },
    { method: 'GET', url: '/api/livestream/d', handler, schema: { response: { 200: { type: 'object' }, '4xx': { type: 'object' } } } },
    { method: 'HEAD', url: '/a', handler }
  ] as RouteOptions[])
  t.same(
    problems.map((p) => `${p.route}: ${p.rule.split(' (')[0]}`),
    ['GET /a: has no schema', 'GET /b/:id: declares no 4xx response', 'GET /b/:id: has path parameters but no params schema', 'GET /api/livestream/d: needs a token but declares no security']
  )
})

t.test('the document describes the envelope, the errors and the bearer auth', async (t) => {
  const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json()
  t.same(doc.components.securitySchemes.bearerAuth, { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: doc.components.securitySchemes.bearerAuth.description })
  const get = doc.paths['/api/livestream/streams/{id}'].get
  t.same(get.security, [{ bearerAuth: [] }], 'stream routes need a bearer token')
  t.same(get.tags, ['streams'])
  const ok = get.responses['200'].content['application/json'].schema
  t.same(Object.keys(ok.properties).sort(), ['data', 'message', 'success'])
  const error = get.responses['4XX'].content['application/json'].schema
  t.same(error.properties.data, { type: 'null' }, 'errors carry data: null')
  t.equal(error.required.includes('message'), true)
  t.notOk(doc.paths['/api/auth/login'].post.security, 'login needs no token')
  t.same(doc.paths['/api/auth/me'].get.security, [{ bearerAuth: [] }])
  t.notOk(doc.paths['/metrics'], '/metrics is not part of the API document')
  t.same(doc.paths['/api/webhooks/{id}'].get.security, [{ bearerAuth: [] }], 'webhook routes need a bearer token')
})

t.test('the UI is served at /docs under a CSP that allows only its own scripts', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/docs/' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/html/)
  t.match(res.body, /swagger-ui-bundle\.js/)
  t.match(res.headers['content-security-policy'], /script-src 'self';/)
  t.notMatch(res.headers['content-security-policy'], /unsafe-eval|https:/)
  const asset = await app.inject({ method: 'GET', url: '/docs/static/swagger-ui-bundle.js' })
  t.equal(asset.statusCode, 200)
})
