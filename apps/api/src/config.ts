import { availableParallelism } from 'node:os'
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { HOW_TO_MAKE_ONE, weakSecretReason } from './jwt-secret.js'

const Bool = Type.Union([Type.Literal('true'), Type.Literal('false'), Type.Literal('1'), Type.Literal('0')])
const Int = (def: number, min = 0) => Type.Integer({ default: def, minimum: min })

/** Every environment variable the api reads, with its default. The only reader of `process.env`. */
export const EnvSchema = Type.Object({
  PORT: Int(3000),
  HOST: Type.String({ default: '0.0.0.0' }),
  STREAM_SERVER_URL: Type.String({ default: 'http://localhost:8000', pattern: '^https?://' }),
  RTMP_PUBLIC_URL: Type.String({ default: 'rtmp://localhost:1935', pattern: '^rtmps?://' }),
  DATABASE_URL: Type.String({ default: 'mysql://livestream:livestream@127.0.0.1:3306/livestream', pattern: '^mysql://' }),
  REDIS_URL: Type.String({ default: 'redis://127.0.0.1:6379', pattern: '^rediss?://' }),
  DB_POOL_SIZE: Int(20, 1),
  // JWT_SECRET only: the seed's SECRET also signs ingest's admin tokens, and one secret for both let a user's token
  // open the admin API. The api no longer reads SECRET.
  JWT_SECRET: Type.Optional(Type.String()),
  JWT_EXPIRES_IN: Type.String({ default: '1h', pattern: '^[0-9]+[smhd]?$' }),
  QUEUE_PREFIX: Type.String({ default: 'livestream', pattern: '^[A-Za-z0-9_-]+$' }),
  CONSUMER_ENABLED: Type.String({ default: 'true' }),
  CONSUMER_CONCURRENCY: Int(16, 1),
  CONSUMER_LOCK_MS: Int(30_000, 1_000),
  REAPER_ENABLED: Type.String({ default: 'true' }),
  NODE_TIMEOUT_MS: Int(30_000, 100),
  REAPER_INTERVAL_MS: Int(5_000, 50),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' }
  ),
  CORS_ORIGINS: Type.String({ default: '' }),
  BODY_LIMIT_BYTES: Int(65_536, 1024),
  REQUEST_TIMEOUT_MS: Int(10_000, 100),
  CONNECTION_TIMEOUT_MS: Int(10_000, 100),
  KEEP_ALIVE_TIMEOUT_MS: Int(5_000, 100),
  // A client must finish sending its headers within this time (slowloris); at most REQUEST_TIMEOUT_MS.
  HEADERS_TIMEOUT_MS: Int(5_000, 100),
  // How often Node checks open connections against the headers and request timeouts: a limit is enforced this late.
  CONNECTIONS_CHECKING_INTERVAL_MS: Int(1_000, 50),
  AUTH_RATE_LIMIT_MAX: Int(10, 1),
  // Password hashes (argon2) at once for the process; 0 = one per core. Past the waiting room: 503 + Retry-After.
  AUTH_HASH_CONCURRENCY: Int(0),
  AUTH_HASH_QUEUE: Int(32),
  AUTH_USER_CACHE_MS: Int(2_000),
  STREAM_CACHE_MS: Int(1_000),
  AUTH_RATE_LIMIT_WINDOW_MS: Int(60_000, 100)
})
type Env = Static<typeof EnvSchema>

export interface Config {
  port: number
  host: string
  streamServerUrl: string
  rtmpPublicUrl: string
  databaseUrl: string
  /** MySQL connections per process, shared by requests and the consumer. */
  dbPoolSize: number
  redisUrl: string
  jwtSecret: string
  jwtExpiresIn: string
  queuePrefix: string
  consumer: { enabled: boolean; concurrency: number; lockMs: number }
  reaper: { enabled: boolean; nodeTimeoutMs: number; intervalMs: number }
  logLevel: string
  corsOrigins: string[]
  http: {
    bodyLimit: number
    requestTimeout: number
    connectionTimeout: number
    keepAliveTimeout: number
    headersTimeout: number
    connectionsCheckingInterval: number
  }
  /** One budget per address for login and register together. */
  authRateLimit: { max: number; windowMs: number }
  authHashing: { concurrency: number; maxWaiting: number }
  authUserCacheMs: number
  streamCacheMs: number
}

/** Thrown when the environment is unusable; the message names the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

const BOOL_VARS = ['CONSUMER_ENABLED', 'REAPER_ENABLED'] as const

/** Reads and validates the environment. Throws ConfigError naming the first bad variable. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const known = Object.keys(EnvSchema.properties)
  const raw: Record<string, unknown> = {}
  for (const key of known) if (source[key] !== undefined && source[key] !== '') raw[key] = source[key]
  const env = Value.Convert(EnvSchema, Value.Default(EnvSchema, raw)) as Env
  const first = Value.Errors(EnvSchema, env).First()
  if (first) throw new ConfigError(`invalid environment variable ${first.path.slice(1)}: ${first.message}`)
  for (const key of BOOL_VARS) {
    if (!Value.Check(Bool, env[key])) throw new ConfigError(`invalid environment variable ${key}: expected true or false`)
  }
  const jwtSecret = env.JWT_SECRET
  if (!jwtSecret) {
    throw new ConfigError(
      `missing environment variable JWT_SECRET: ${HOW_TO_MAKE_ONE} (the api no longer falls back to SECRET, which signs ingest's admin tokens)`
    )
  }
  const weak = weakSecretReason(jwtSecret)
  if (weak) throw new ConfigError(`invalid environment variable JWT_SECRET: ${weak}; ${HOW_TO_MAKE_ONE}`)
  // Node refuses to start an http server whose headers timeout exceeds its request timeout; say so by name instead.
  if (env.HEADERS_TIMEOUT_MS > env.REQUEST_TIMEOUT_MS) {
    throw new ConfigError(
      `invalid environment variable HEADERS_TIMEOUT_MS: ${env.HEADERS_TIMEOUT_MS} is more than REQUEST_TIMEOUT_MS (${env.REQUEST_TIMEOUT_MS})`
    )
  }
  const on = (v: string) => v === 'true' || v === '1'
  return {
    port: env.PORT,
    host: env.HOST,
    streamServerUrl: env.STREAM_SERVER_URL.replace(/\/+$/, ''),
    rtmpPublicUrl: env.RTMP_PUBLIC_URL.replace(/\/+$/, ''),
    databaseUrl: env.DATABASE_URL,
    dbPoolSize: env.DB_POOL_SIZE,
    redisUrl: env.REDIS_URL,
    jwtSecret,
    jwtExpiresIn: env.JWT_EXPIRES_IN,
    queuePrefix: env.QUEUE_PREFIX,
    consumer: { enabled: on(env.CONSUMER_ENABLED), concurrency: env.CONSUMER_CONCURRENCY, lockMs: env.CONSUMER_LOCK_MS },
    reaper: { enabled: on(env.REAPER_ENABLED), nodeTimeoutMs: env.NODE_TIMEOUT_MS, intervalMs: env.REAPER_INTERVAL_MS },
    logLevel: env.LOG_LEVEL,
    corsOrigins: env.CORS_ORIGINS.split(',').map((s) => s.trim()).filter(Boolean),
    http: {
      bodyLimit: env.BODY_LIMIT_BYTES,
      requestTimeout: env.REQUEST_TIMEOUT_MS,
      connectionTimeout: env.CONNECTION_TIMEOUT_MS,
      keepAliveTimeout: env.KEEP_ALIVE_TIMEOUT_MS,
      headersTimeout: env.HEADERS_TIMEOUT_MS,
      connectionsCheckingInterval: env.CONNECTIONS_CHECKING_INTERVAL_MS
    },
    authRateLimit: { max: env.AUTH_RATE_LIMIT_MAX, windowMs: env.AUTH_RATE_LIMIT_WINDOW_MS },
    authHashing: { concurrency: env.AUTH_HASH_CONCURRENCY || availableParallelism(), maxWaiting: env.AUTH_HASH_QUEUE },
    authUserCacheMs: env.AUTH_USER_CACHE_MS,
    streamCacheMs: env.STREAM_CACHE_MS
  }
}

/** For process entries: the config, or a one-line reason on stderr and exit code 2. */
export function loadConfigOrExit(role: string, source: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(source)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${role}: ${err.message}\n`)
      process.exit(2)
    }
    throw err
  }
}
