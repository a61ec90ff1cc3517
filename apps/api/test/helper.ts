import { randomBytes } from 'node:crypto'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { createTestDatabase } from '@livestream/db/testing'
import { dropTestPrefix, testQueuePrefix } from '@livestream/events/testing'
import { Redis } from 'ioredis'
import { buildApp, type BuildOptions } from '../src/app.js'
import { loadConfig, type Config } from '../src/config.js'

export const JWT_SECRET = randomBytes(32).toString('hex')

export function testConfig(databaseUrl: string, env: Record<string, string> = {}): Config {
  return loadConfig({
    DATABASE_URL: databaseUrl,
    REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
    JWT_SECRET,
    STREAM_SERVER_URL: 'http://cdn.test:8000',
    RTMP_PUBLIC_URL: 'rtmp://ingest.test:1935',
    QUEUE_PREFIX: testQueuePrefix('api'),
    AUTH_RATE_LIMIT_MAX: '1000',
    ...env
  })
}

/** A fresh database and an app over it for one test file; both go away at teardown. */
export async function build(
  t: Test,
  env: Record<string, string> = {},
  options: Omit<BuildOptions, 'config'> = {}
): Promise<FastifyInstance> {
  const db = await createTestDatabase('ls_api')
  const config = testConfig(db.url, env)
  const app = await buildApp({ config, consumer: false, reaper: false, webhookWorker: false, ...options })
  t.teardown(async () => {
    await app.close()
    await db.drop()
    await dropRedisPrefix(config.queuePrefix)
  })
  await app.ready()
  return app
}

/** Removes the Redis keys (queue, heartbeats) under a test's prefix, once what wrote them is closed. */
export async function dropRedisPrefix(prefix: string): Promise<void> {
  const redis = new Redis(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await redis.connect()
    await dropTestPrefix(redis, prefix)
  } finally {
    redis.disconnect()
  }
}

export interface TestUser {
  id: number
  token: string
  email: string
}

let n = 0
export async function register(app: FastifyInstance, name = 'user'): Promise<TestUser> {
  const email = `${name}-${++n}-${randomBytes(3).toString('hex')}@example.com`
  const res = await app.inject({
    method: 'POST',
    url: '/api/auth/register',
    payload: { email, password: 'correct horse battery', display_name: name }
  })
  if (res.statusCode !== 201) throw new Error(`register failed: ${res.statusCode} ${res.body}`)
  const body = res.json()
  return { id: body.data.user.id, token: body.data.token, email }
}

export function as(app: FastifyInstance, user: TestUser | null) {
  return (method: 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT', url: string, payload?: unknown): Promise<LightMyRequestResponse> =>
    app.inject({
      method,
      url,
      headers: user ? { authorization: `Bearer ${user.token}` } : {},
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> })
    })
}

/** Every answer is the envelope. */
export function assertEnvelope(t: Test, res: LightMyRequestResponse, status: number) {
  t.equal(res.statusCode, status, `status ${status} (${res.body.slice(0, 200)})`)
  const body = res.json()
  t.type(body.success, 'boolean')
  t.type(body.message, 'string')
  t.ok('data' in body, 'has data')
  t.equal(body.success, status < 400)
  return body
}
