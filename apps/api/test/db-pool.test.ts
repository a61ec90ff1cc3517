import t from 'tap'
import { build, JWT_SECRET } from './helper.js'
import { loadConfig } from '../src/config.js'

t.test('DB_POOL_SIZE: 20 by default, a positive integer, and the size of the pool the app opens', async (t) => {
  t.equal(loadConfig({ JWT_SECRET }).dbPoolSize, 20)
  t.throws(() => loadConfig({ JWT_SECRET, DB_POOL_SIZE: '0' }), /invalid environment variable DB_POOL_SIZE/)
  t.throws(() => loadConfig({ JWT_SECRET, DB_POOL_SIZE: 'many' }), /invalid environment variable DB_POOL_SIZE/)
  const app = await build(t, { DB_POOL_SIZE: '3' })
  // mysql2's promise pool wraps its core pool, which holds the settings.
  const { pool } = app.dbClient.pool as unknown as { pool: { config: { connectionLimit: number } } }
  t.equal(pool.config.connectionLimit, 3)
})
