import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { landingSchema } from '../schemas/watch.js'

/** `/`: a new user's first request gets directions instead of a 404. */
const landingRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/', { schema: landingSchema }, async () => ({
    success: true,
    data: {
      service: 'circle-livestream api',
      links: {
        watch: '/watch/{playback_id}',
        api: '/api',
        docs: '/docs',
        healthz: '/healthz',
        readyz: '/readyz'
      }
    },
    message: 'circle-livestream api: REST under /api, a stream plays at /watch/{playback_id}'
  }))
}
export default landingRoutes
