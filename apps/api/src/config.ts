import { availableParallelism } from 'node:os'
import { Type } from '@sinclair/typebox'
import { ConfigError, Flag, Int, invalidVariable, loadEnv, loadOrExit, LogLevel, type EnvSource } from '@livestream/config'
import { HOW_TO_MAKE_ONE, weakSecretReason } from './jwt-secret.js'

export { ConfigError }

/** Every environment variable the api reads, with its default; `Config` is derived from it. */
export const EnvSchema = Type.Object({
  PORT: Int(3000),
  HOST: Type.String({ default: '0.0.0.0' }),
  STREAM_SERVER_URL: Type.String({ default: 'http://localhost:8000', pattern: '^https?://' }),
  /** A CDN (or any cache) in front of the ingest nodes: playback URLs are built on it instead of STREAM_SERVER_URL. */
  PLAYBACK_BASE_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  RTMP_PUBLIC_URL: Type.String({ default: 'rtmp://localhost:1935', pattern: '^rtmps?://' }),
  DATABASE_URL: Type.String({ default: 'mysql://livestream:livestream@127.0.0.1:3306/livestream', pattern: '^mysql://' }),
  REDIS_URL: Type.String({ default: 'redis://127.0.0.1:6379', pattern: '^rediss?://' }),
  /** MySQL connections per process, shared by requests and the consumer. */
  DB_POOL_SIZE: Int(20, 1),
  // JWT_SECRET only: the seed's SECRET also signs ingest's admin tokens, and one secret for both let a user's token
  // open the admin API. The api no longer reads SECRET. Optional here so that its absence gets its own message.
  JWT_SECRET: Type.Optional(Type.String()),
  JWT_EXPIRES_IN: Type.String({ default: '1h', pattern: '^[0-9]+[smhd]?$' }),
  QUEUE_PREFIX: Type.String({ default: 'livestream', pattern: '^[A-Za-z0-9_-]+$' }),
  CONSUMER_ENABLED: Flag(true),
  CONSUMER_CONCURRENCY: Int(16, 1),
  CONSUMER_LOCK_MS: Int(30_000, 1_000),
  REAPER_ENABLED: Flag(true),
  NODE_TIMEOUT_MS: Int(30_000, 100),
  REAPER_INTERVAL_MS: Int(5_000, 50),
  LOG_LEVEL: LogLevel,
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

/** The api's configuration, grouped by what uses it; its type is inferred from `EnvSchema` through `loadConfig`. */
export type Config = ReturnType<typeof loadConfig>

/** Reads and validates the environment (by default `process.env`). Throws ConfigError naming the first bad variable. */
export function loadConfig(source?: EnvSource) {
  const env = loadEnv(EnvSchema, source)
  const jwtSecret = env.JWT_SECRET
  if (!jwtSecret) {
    throw new ConfigError(
      `missing environment variable JWT_SECRET: ${HOW_TO_MAKE_ONE} (the api no longer falls back to SECRET, which signs ingest's admin tokens)`
    )
  }
  const weak = weakSecretReason(jwtSecret)
  if (weak) throw invalidVariable('JWT_SECRET', `${weak}; ${HOW_TO_MAKE_ONE}`)
  // Node refuses to start an http server whose headers timeout exceeds its request timeout; say so by name instead.
  if (env.HEADERS_TIMEOUT_MS > env.REQUEST_TIMEOUT_MS) {
    throw invalidVariable('HEADERS_TIMEOUT_MS', `${env.HEADERS_TIMEOUT_MS} is more than REQUEST_TIMEOUT_MS (${env.REQUEST_TIMEOUT_MS})`)
  }
  return {
    port: env.PORT,
    host: env.HOST,
    /** The base of every stream's `playback_url` / `dash_url`, whichever ingest node holds it. */
    playbackBaseUrl: (env.PLAYBACK_BASE_URL || env.STREAM_SERVER_URL).replace(/\/+$/, ''),
    rtmpPublicUrl: env.RTMP_PUBLIC_URL.replace(/\/+$/, ''),
    databaseUrl: env.DATABASE_URL,
    dbPoolSize: env.DB_POOL_SIZE,
    redisUrl: env.REDIS_URL,
    jwtSecret,
    jwtExpiresIn: env.JWT_EXPIRES_IN,
    queuePrefix: env.QUEUE_PREFIX,
    consumer: { enabled: env.CONSUMER_ENABLED, concurrency: env.CONSUMER_CONCURRENCY, lockMs: env.CONSUMER_LOCK_MS },
    reaper: { enabled: env.REAPER_ENABLED, nodeTimeoutMs: env.NODE_TIMEOUT_MS, intervalMs: env.REAPER_INTERVAL_MS },
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
    /** One budget per address for login and register together. */
    authRateLimit: { max: env.AUTH_RATE_LIMIT_MAX, windowMs: env.AUTH_RATE_LIMIT_WINDOW_MS },
    authHashing: { concurrency: env.AUTH_HASH_CONCURRENCY || availableParallelism(), maxWaiting: env.AUTH_HASH_QUEUE },
    authUserCacheMs: env.AUTH_USER_CACHE_MS,
    streamCacheMs: env.STREAM_CACHE_MS
  }
}

/** For process entries: the config, or a one-line reason on stderr and exit code 2. */
export function loadConfigOrExit(role: string, source?: EnvSource): Config {
  return loadOrExit(role, () => loadConfig(source))
}
