import fp from 'fastify-plugin'
import { createStreamsService, type StreamsService } from './streams/streams-service.js'
import { createUsersService, type UsersService } from './users/users-service.js'

declare module 'fastify' {
  interface FastifyInstance {
    streams: StreamsService
    users: UsersService
  }
}

/** The domain services, built once over the pool. */
export default fp(
  async (app) => {
    app.decorate('streams', createStreamsService(app.db))
    app.decorate('users', createUsersService(app.db))
  },
  { name: 'services', dependencies: ['db'] }
)
