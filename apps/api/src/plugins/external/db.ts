import fp from 'fastify-plugin'
import { createDbClient, type DbClient } from '@livestream/db'

declare module 'fastify' {
  interface FastifyInstance {
    dbClient: DbClient
    db: DbClient['db']
  }
}

/**
 * One mysql2 pool per app, closed with it. Boots even when MySQL is down: requests answer 503 until it is back.
 * Multiple statements per query: the consumer applies an event and writes its ledger row as one transaction in one
 * round trip (`stream-store.ts`); every value the api sends is a parameter, never spliced into SQL text.
 */
export default fp(
  async (app, opts: { url: string; poolSize: number }) => {
    const client = createDbClient({ url: opts.url, connectionLimit: opts.poolSize, multipleStatements: true })
    app.decorate('dbClient', client)
    app.decorate('db', client.db)
    app.addHook('onClose', () => client.close())
  },
  { name: 'db' }
)
