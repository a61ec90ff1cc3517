import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { RouteOptions } from 'fastify'

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route as registered, HEAD and hidden ones included: what the OpenAPI check walks (test/openapi.test.ts). */
    routeCatalog: readonly RouteOptions[]
  }
}

/**
 * For a subtree's `onRoute` hook: documents every route registered under it with these tags and security. Each route
 * gets a schema object of its own, since route schemas are shared constants (start, end and rotate share one).
 */
export const documentRoutes =
  (doc: { tags: string[]; security?: Array<Record<string, string[]>> }) =>
  (route: RouteOptions): void => {
    route.schema = { ...route.schema, tags: doc.tags, ...(doc.security ? { security: doc.security } : {}) }
  }

// Swagger UI's page loads its scripts and styles from /docs/static; it styles elements inline and shows data: images.
// Nothing from another origin, no frames, no forms.
const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/**
 * The OpenAPI 3.1 document, generated from the routes' TypeBox schemas, at `/docs/json` (and `/docs/yaml`), with
 * Swagger UI at `/docs`. 3.1 because its schemas are JSON Schema: `type: "null"` (the envelope's `data` on errors)
 * has no 3.0 spelling. Routes marked `schema: { hide: true }` (the UI's own assets, Bull Board, `/metrics`) are left
 * out; the OpenAPI check requires every other route to describe its answers.
 */
export default fp(
  async (app, opts: { enabled: boolean }) => {
    const catalog: RouteOptions[] = []
    app.addHook('onRoute', (route) => {
      catalog.push(route)
    })
    app.decorate('routeCatalog', catalog)

    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'circle-livestream API',
          version: '1.0.0',
          description:
            'Every answer, errors included, is the envelope `{ success, data, message, count? }`: `success` is false on ' +
            'every 4xx and 5xx, `data` is then null and `message` says what went wrong (5xx messages are generic). ' +
            'Routes under /api/livestream and /api/webhooks, and /api/auth/me, need `Authorization: Bearer <JWT>` from /api/auth/login or ' +
            "the platform's identity provider."
        },
        tags: [
          { name: 'auth', description: 'Accounts and tokens' },
          { name: 'streams', description: 'Streams, their lifecycle and participants (a bearer token on every route)' },
          { name: 'webhooks', description: "A user's webhook endpoints (Standard Webhooks) and their deliveries (a bearer token)" },
          { name: 'live updates', description: "A stream's changes as Server-Sent Events (a bearer token)" },
          { name: 'public', description: 'What anyone holding a playback id may read, without a token' },
          { name: 'health', description: 'Liveness and readiness probes' }
        ],
        components: {
          securitySchemes: {
            bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: "A user's token (HS256, `sub` = user id)" }
          }
        }
      }
    })
    if (opts.enabled) {
      await app.register(swaggerUi, {
        routePrefix: '/docs',
        staticCSP: DOCS_CSP,
        uiConfig: { validatorUrl: null, deepLinking: false }
      } as Parameters<typeof swaggerUi>[1])
    }
  },
  { name: 'swagger' }
)
