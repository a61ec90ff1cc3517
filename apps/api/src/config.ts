import { availableParallelism } from 'node:os'
import { Type } from '@sinclair/typebox'
import {
  ConfigError,
  Flag,
  HOW_TO_MAKE_ONE,
  Int,
  invalidVariable,
  loadEnv,
  loadOrExit,
  LogLevel,
  weakSecretError,
  weakSecretReason,
  type EnvSource
} from '@livestream/config'

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
  // Platform events not passed on this long after their change (process died, Redis away) are emitted again by the reaper.
  OUTBOX_RELAY_AFTER_MS: Int(5_000, 100),
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
  AUTH_RATE_LIMIT_WINDOW_MS: Int(60_000, 100),
  // Whoever holds this bearer token is an operator: Bull Board (/admin/queues), /metrics, and the admin calls. Unset:
  // those answer 403 (operator access is not configured). A placeholder or weak value stops the start.
  OPERATOR_TOKEN: Type.Optional(Type.String()),
  // A scrape-only bearer token for GET /metrics, so Prometheus need not hold the operator token. Optional.
  METRICS_TOKEN: Type.Optional(Type.String()),
  // Serve the OpenAPI document (/docs/json) and its UI (/docs).
  DOCS_ENABLED: Flag(true),
  // The worker process (worker.js) serves GET /metrics, and nothing else, on this port; 0: it serves no HTTP.
  WORKER_METRICS_PORT: Int(0),
  // false: no per-request metrics and no GET /metrics (what `pnpm bench:api` compares against; keep it on).
  METRICS_ENABLED: Flag(true),
  // A stream made live by hand (POST /start) that no publisher reaches within this ends as `no-publisher`; 0: never.
  NO_PUBLISHER_TIMEOUT_MS: Int(600_000),
  // Live updates (SSE): a comment line this often keeps proxies from closing an idle stream.
  SSE_HEARTBEAT_MS: Int(15_000, 1_000),
  // Open live-update connections per user (over every api process), and per client address on the public ones.
  SSE_MAX_PER_USER: Int(10, 1),
  SSE_MAX_PER_ADDRESS: Int(20, 1),
  // Updates kept per stream for Last-Event-ID replay, and for how long after the last one.
  SSE_REPLAY_EVENTS: Int(200, 1),
  SSE_REPLAY_TTL_MS: Int(3_600_000, 1_000),
  /** How long an ingest node's viewer report counts after it arrived; above twice ingest's VIEWER_REPORT_MS (its refresh). */
  VIEWER_REPORT_TTL_MS: Int(20_000, 1_000),
  // The event ledger keeps viewer reports this long (they only dedupe redeliveries), lifecycle events for good; 0: all kept.
  VIEWER_LEDGER_RETENTION_MS: Int(86_400_000),
  // Webhooks (plugins/app/webhooks): the delivery worker, its retry schedule and the SSRF switches.
  WEBHOOK_WORKER_ENABLED: Flag(true),
  WEBHOOK_CONCURRENCY: Int(16, 1),
  WEBHOOK_LOCK_MS: Int(30_000, 1_000),
  // One delivery attempt, connect to the end of the answer's (capped) body.
  WEBHOOK_TIMEOUT_MS: Int(5_000, 100),
  // The wait before each retry, at most (each is drawn between half and all of it): 9 attempts over 11-22 hours.
  WEBHOOK_RETRY_DELAYS_MS: Type.String({ default: '5000,30000,180000,900000,3600000,10800000,21600000,43200000', pattern: '^[0-9]{1,10}(,[0-9]{1,10}){0,24}$' }),
  WEBHOOK_DISABLE_AFTER_FAILED_EVENTS: Int(3, 1),
  WEBHOOK_MAX_ENDPOINTS: Int(20, 1),
  WEBHOOK_LOG_ROWS: Int(1_000, 10),
  WEBHOOK_ALLOW_HTTP: Flag(false),
  WEBHOOK_ALLOW_PRIVATE: Flag(false),
  // Who may put the watch page in an iframe: `*` (any site), `none`, or comma-separated origins (CSP frame-ancestors).
  WATCH_EMBED_ORIGINS: Type.String({ default: '*' }),
  // Origins the watch page's player may fetch media from, beyond STREAM_SERVER_URL's and the stream's own node.
  WATCH_MEDIA_ORIGINS: Type.String({ default: '' })
})

const ORIGIN = /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$|^https?:\/\/\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/

/** A comma-separated list of origins (scheme://host[:port]), each checked, or a ConfigError naming the variable. */
function originList(name: string, value: string): string[] {
  const list = value.split(',').map((s) => s.trim().replace(/\/+$/, '')).filter(Boolean)
  const bad = list.find((o) => !ORIGIN.test(o))
  if (bad !== undefined) throw invalidVariable(name, `"${bad.slice(0, 100)}" is not an origin (scheme://host[:port], no path)`)
  return list
}

/** `*`, `none` (nobody may frame the page), or a list of origins. */
function embedOrigins(value: string): '*' | 'none' | string[] {
  const v = value.trim()
  if (v === '*' || v === 'none') return v
  const list = originList('WATCH_EMBED_ORIGINS', v)
  if (list.length === 0) throw invalidVariable('WATCH_EMBED_ORIGINS', 'give *, none, or comma-separated origins')
  return list
}

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
  for (const name of ['OPERATOR_TOKEN', 'METRICS_TOKEN'] as const) {
    const error = weakSecretError(name, env[name])
    if (error) throw error
  }
  if (env.OPERATOR_TOKEN !== undefined && env.OPERATOR_TOKEN === jwtSecret) {
    throw invalidVariable('OPERATOR_TOKEN', 'equals JWT_SECRET: the operator credential must be a secret of its own')
  }
  // Node refuses to start an http server whose headers timeout exceeds its request timeout; say so by name instead.
  if (env.HEADERS_TIMEOUT_MS > env.REQUEST_TIMEOUT_MS) {
    throw invalidVariable('HEADERS_TIMEOUT_MS', `${env.HEADERS_TIMEOUT_MS} is more than REQUEST_TIMEOUT_MS (${env.REQUEST_TIMEOUT_MS})`)
  }
  return {
    port: env.PORT,
    host: env.HOST,
    /** The base of every stream's `playback_url` / `dash_url`, whichever ingest node holds it. */
    /**
     * The base of every stream's `playback_url` / `dash_url`, whichever ingest node holds it (any node serves any
     * stream): PLAYBACK_BASE_URL (a CDN) when set, else STREAM_SERVER_URL.
     */
    streamServerUrl: (env.PLAYBACK_BASE_URL || env.STREAM_SERVER_URL).replace(/\/+$/, ''),
    rtmpPublicUrl: env.RTMP_PUBLIC_URL.replace(/\/+$/, ''),
    databaseUrl: env.DATABASE_URL,
    dbPoolSize: env.DB_POOL_SIZE,
    redisUrl: env.REDIS_URL,
    jwtSecret,
    jwtExpiresIn: env.JWT_EXPIRES_IN,
    queuePrefix: env.QUEUE_PREFIX,
    consumer: { enabled: env.CONSUMER_ENABLED, concurrency: env.CONSUMER_CONCURRENCY, lockMs: env.CONSUMER_LOCK_MS },
    reaper: {
      enabled: env.REAPER_ENABLED,
      nodeTimeoutMs: env.NODE_TIMEOUT_MS,
      intervalMs: env.REAPER_INTERVAL_MS,
      noPublisherTimeoutMs: env.NO_PUBLISHER_TIMEOUT_MS,
      outboxRelayAfterMs: env.OUTBOX_RELAY_AFTER_MS,
      viewerLedgerRetentionMs: env.VIEWER_LEDGER_RETENTION_MS
    },
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
    streamCacheMs: env.STREAM_CACHE_MS,
    /** The operator's bearer token; null: operator routes answer 403. */
    operatorToken: env.OPERATOR_TOKEN ?? null,
    /** A bearer token that may read /metrics only (the operator token may too). */
    metricsToken: env.METRICS_TOKEN ?? null,
    docsEnabled: env.DOCS_ENABLED,
    workerMetricsPort: env.WORKER_METRICS_PORT,
    metricsEnabled: env.METRICS_ENABLED,
    liveUpdates: {
      heartbeatMs: env.SSE_HEARTBEAT_MS,
      maxPerUser: env.SSE_MAX_PER_USER,
      maxPerAddress: env.SSE_MAX_PER_ADDRESS,
      replayEvents: env.SSE_REPLAY_EVENTS,
      replayTtlMs: env.SSE_REPLAY_TTL_MS
    },
    viewerReportTtlMs: env.VIEWER_REPORT_TTL_MS,
    webhooks: {
      worker: { enabled: env.WEBHOOK_WORKER_ENABLED, concurrency: env.WEBHOOK_CONCURRENCY, lockMs: env.WEBHOOK_LOCK_MS },
      timeoutMs: env.WEBHOOK_TIMEOUT_MS,
      retryDelaysMs: env.WEBHOOK_RETRY_DELAYS_MS.split(',').map(Number),
      disableAfterFailedEvents: env.WEBHOOK_DISABLE_AFTER_FAILED_EVENTS,
      maxEndpointsPerUser: env.WEBHOOK_MAX_ENDPOINTS,
      logRowsPerEndpoint: env.WEBHOOK_LOG_ROWS,
      allowHttp: env.WEBHOOK_ALLOW_HTTP,
      allowPrivate: env.WEBHOOK_ALLOW_PRIVATE
    },
    watch: {
      embedOrigins: embedOrigins(env.WATCH_EMBED_ORIGINS),
      mediaOrigins: originList('WATCH_MEDIA_ORIGINS', env.WATCH_MEDIA_ORIGINS)
    }
  }
}

/** For process entries: the config, or a one-line reason on stderr and exit code 2. */
export function loadConfigOrExit(role: string, source?: EnvSource): Config {
  return loadOrExit(role, () => loadConfig(source))
}
