import { hostname } from 'node:os'
import path from 'node:path'
import { Type } from '@sinclair/typebox'
import { ConfigError, Flag, HOW_TO_MAKE_ONE, Int, invalidVariable, loadEnv, LogLevel, weakSecretReason, type EnvSource } from '@livestream/config'

export { ConfigError }

/** Every environment variable ingest reads, with its default; `IngestConfig` is derived from it. */
export const EnvSchema = Type.Object({
  HOST: Type.String({ default: '0.0.0.0' }),
  RTMP_PORT: Int(1935, 1),
  HTTP_PORT: Int(8000, 1),
  ADMIN_PORT: Int(8001, 1),
  ADMIN_HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  FFMPEG_PATH: Type.Optional(Type.String({ minLength: 1 })),
  API_USER: Type.Optional(Type.String()),
  API_PASS: Type.Optional(Type.String()),
  SECRET: Type.Optional(Type.String()),
  /** Read only to refuse a SECRET equal to it: the api's user-token secret must never be the admin API's. */
  JWT_SECRET: Type.Optional(Type.String()),
  INGEST_NODE_ID: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.-]+$' })),
  INGEST_PUBLIC_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  /** Where the other nodes reach this one's media HTTP to proxy players to it; default INGEST_PUBLIC_URL. */
  INGEST_INTERNAL_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  /** A drain disconnects the node's publishers one at a time over this many seconds; 0: SIGTERM stops at once. */
  DRAIN_SECONDS: Int(30),
  /** The operators' bearer token (`POST /admin/drain`); unset: the drain call is off (SIGTERM still drains). */
  OPERATOR_TOKEN: Type.Optional(Type.String()),
  /** How long a proxied playback request may wait for the node holding the stream (blocking reloads included). */
  PLAYBACK_PROXY_TIMEOUT_MS: Int(35_000, 100),
  REDIS_URL: Type.String({ default: 'redis://127.0.0.1:6379', pattern: '^rediss?://' }),
  DATABASE_URL: Type.String({ default: 'mysql://livestream:livestream@127.0.0.1:3306/livestream', pattern: '^mysql://' }),
  MEDIA_ROOT: Type.String({ default: './media', minLength: 1 }),
  /** Where each node keeps its events until the queue has them; default `<MEDIA_ROOT>/.outbox`. */
  OUTBOX_DIR: Type.Optional(Type.String({ minLength: 1 })),
  RECONNECT_WINDOW_MS: Int(10_000),
  HEARTBEAT_INTERVAL_MS: Int(5_000, 50),
  MEDIA_RETENTION_MS: Int(60_000),
  AUTH_CACHE_MS: Int(3_000),
  KEY_RECHECK_MS: Int(5_000, 50),
  HLS_SEGMENT_SECONDS: Int(2, 1),
  HLS_PART_SECONDS: Type.Number({ default: 0.33, minimum: 0.05 }),
  MEDIA_WINDOW_SEGMENTS: Int(6, 3),
  TLS_CERT_PATH: Type.Optional(Type.String({ minLength: 1 })),
  TLS_KEY_PATH: Type.Optional(Type.String({ minLength: 1 })),
  PUBLISH_FAIL_LIMIT: Int(5, 1),
  PUBLISH_SLOWDOWN_MAX_MS: Int(3_000),
  RTMP_PUBLISH_DEADLINE_MS: Int(10_000, 100),
  RTMP_PREPUBLISH_MAX_BYTES: Int(65_536, 4_096),
  QUEUE_PREFIX: Type.String({ default: 'livestream', pattern: '^[A-Za-z0-9_-]+$' }),
  LOG_LEVEL: LogLevel,
  HTTP_REQUEST_TIMEOUT_MS: Int(10_000, 100),
  HTTP_HEADERS_TIMEOUT_MS: Int(5_000, 100),
  /** Viewer counting (README, "What counts as a viewer"); off only to measure what it costs. */
  VIEWER_COUNTING: Flag(true),
  VIEWER_WINDOW_MS: Int(10_000, 1_000),
  VIEWER_REPORT_MS: Int(5_000, 100),
  VIEWER_SESSIONS_PER_ADDRESS: Int(32, 1),
  VIEWER_MAX_SESSIONS_PER_STREAM: Int(50_000, 1),
  VIEWER_MAX_SESSIONS: Int(200_000, 1),
  /** Proxies in front of media HTTP whose X-Forwarded-For is trusted for the viewer's address; 0: none, the header is ignored. */
  VIEWER_TRUST_PROXY_HOPS: Int(0),
  // Read only to tell whether glibc's mmap threshold is pinned (see `ALLOCATOR_ENV` in rtmp-limits.ts); glibc reads them.
  MALLOC_MMAP_THRESHOLD_: Type.Optional(Type.String()),
  GLIBC_TUNABLES: Type.Optional(Type.String())
})

/** Ingest's configuration, grouped by what uses it; its type is inferred from `EnvSchema` through `loadConfig`. */
export type IngestConfig = ReturnType<typeof loadConfig>

/** Reads and validates the environment (by default `process.env`). Throws ConfigError naming the first bad variable. */
export function loadConfig(source?: EnvSource) {
  const env = loadEnv(EnvSchema, source)
  if ((env.API_USER && !env.API_PASS) || (!env.API_USER && env.API_PASS)) {
    throw new ConfigError('API_USER and API_PASS must be set together (or both left unset to disable the admin API)')
  }
  if (!env.TLS_CERT_PATH !== !env.TLS_KEY_PATH) {
    throw new ConfigError('TLS_CERT_PATH and TLS_KEY_PATH must be set together (or both left unset for plain HTTP)')
  }
  if (env.HLS_PART_SECONDS >= env.HLS_SEGMENT_SECONDS) {
    throw invalidVariable('HLS_PART_SECONDS', 'must be shorter than HLS_SEGMENT_SECONDS')
  }
  if (env.VIEWER_WINDOW_MS < env.HLS_SEGMENT_SECONDS * 2_000) {
    // A player that is not low-latency asks for its playlist once a segment: a shorter window would drop it between two.
    throw invalidVariable('VIEWER_WINDOW_MS', `must be at least two segments (HLS_SEGMENT_SECONDS x 2000 = ${env.HLS_SEGMENT_SECONDS * 2_000})`)
  }
  if (env.SECRET !== undefined && env.SECRET === env.JWT_SECRET) {
    throw invalidVariable(
      'SECRET',
      "it equals JWT_SECRET, the api's user-token secret; the admin API's secret " +
        'must be its own (make one with `openssl rand -base64 48`, or leave SECRET unset for a random one per start)'
    )
  }
  // An empty value counts as unset (compose passes `OPERATOR_TOKEN=` through when the operator set none).
  const operatorToken = env.OPERATOR_TOKEN || null
  if (operatorToken) {
    const weak = weakSecretReason(operatorToken)
    if (weak) throw invalidVariable('OPERATOR_TOKEN', `${weak}; ${HOW_TO_MAKE_ONE}`)
    // Users' tokens are signed with JWT_SECRET: a user who learnt it must not become an operator with it.
    if (operatorToken === env.JWT_SECRET || operatorToken === env.SECRET) {
      throw invalidVariable('OPERATOR_TOKEN', `it equals ${operatorToken === env.JWT_SECRET ? 'JWT_SECRET' : 'SECRET'}; the operators' token must be its own (${HOW_TO_MAKE_ONE})`)
    }
  }
  const publicUrl = (env.INGEST_PUBLIC_URL ?? `http://localhost:${env.HTTP_PORT}`).replace(/\/+$/, '')
  return {
    host: env.HOST,
    rtmpPort: env.RTMP_PORT,
    httpPort: env.HTTP_PORT,
    /** node-media-server's admin API (JWT login with API_USER/API_PASS); null when disabled. */
    admin:
      env.API_USER && env.API_PASS
        ? { host: env.ADMIN_HOST, port: env.ADMIN_PORT, user: env.API_USER, pass: env.API_PASS, secret: env.SECRET ?? null }
        : null,
    ffmpegPath: env.FFMPEG_PATH ?? 'ffmpeg',
    nodeId: env.INGEST_NODE_ID ?? hostname().replace(/[^A-Za-z0-9_.-]/g, '-'),
    publicUrl,
    /** This node's media HTTP as the other nodes reach it (the playback proxy). */
    internalUrl: (env.INGEST_INTERNAL_URL ?? publicUrl).replace(/\/+$/, ''),
    /** Publishers are disconnected over this long when draining; 0: no drain, SIGTERM ends the streams at once. */
    drainMs: env.DRAIN_SECONDS * 1000,
    /** Bearer token of `POST /admin/drain`; null: that call answers 403. */
    operatorToken,
    playbackProxyTimeoutMs: env.PLAYBACK_PROXY_TIMEOUT_MS,
    redisUrl: env.REDIS_URL,
    databaseUrl: env.DATABASE_URL,
    mediaRoot: path.resolve(env.MEDIA_ROOT),
    /** The durable events outbox: `<outboxDir>/<nodeId>.jsonl`. */
    outboxDir: path.resolve(env.OUTBOX_DIR ?? path.join(env.MEDIA_ROOT, '.outbox')),
    reconnectWindowMs: env.RECONNECT_WINDOW_MS,
    heartbeatIntervalMs: env.HEARTBEAT_INTERVAL_MS,
    mediaRetentionMs: env.MEDIA_RETENTION_MS,
    authCacheMs: env.AUTH_CACHE_MS,
    keyRecheckMs: env.KEY_RECHECK_MS,
    hlsSegmentSeconds: env.HLS_SEGMENT_SECONDS,
    /** LL-HLS part target, seconds: the packager cuts parts of about this length; below the segment length. */
    hlsPartSeconds: env.HLS_PART_SECONDS,
    /** Complete segments each live window keeps in memory (plus the one being written). */
    mediaWindowSegments: env.MEDIA_WINDOW_SEGMENTS,
    /** HTTP/2 with TLS for media HTTP (HTTP/1.1 still accepted); null: plain HTTP/1.1. */
    tls: env.TLS_CERT_PATH && env.TLS_KEY_PATH ? { certPath: path.resolve(env.TLS_CERT_PATH), keyPath: path.resolve(env.TLS_KEY_PATH) } : null,
    publishFailLimit: env.PUBLISH_FAIL_LIMIT,
    publishSlowdownMaxMs: env.PUBLISH_SLOWDOWN_MAX_MS,
    /** An RTMP connection must ask to publish within `deadlineMs` of opening, having sent at most `maxBytes`. */
    rtmpPrePublish: { deadlineMs: env.RTMP_PUBLISH_DEADLINE_MS, maxBytes: env.RTMP_PREPUBLISH_MAX_BYTES },
    queuePrefix: env.QUEUE_PREFIX,
    /**
     * glibc's mmap threshold is fixed by the environment (MALLOC_MMAP_THRESHOLD_ or GLIBC_TUNABLES), so it cannot
     * drift upward: see `ALLOCATOR_ENV` in rtmp-limits.ts.
     */
    mallocPinned: env.MALLOC_MMAP_THRESHOLD_ !== undefined || /glibc\.malloc\.mmap_threshold=/.test(env.GLIBC_TUNABLES ?? ''),
    logLevel: env.LOG_LEVEL,
    http: { requestTimeout: env.HTTP_REQUEST_TIMEOUT_MS, headersTimeout: env.HTTP_HEADERS_TIMEOUT_MS },
    /**
     * HLS/DASH viewer counting; null when off. A session counts for `windowMs` after its last request; counts go out
     * every `reportMs` when changed, and unchanged (above zero) every two intervals, so the api's sum keeps them.
     */
    viewers: env.VIEWER_COUNTING
      ? {
          windowMs: env.VIEWER_WINDOW_MS,
          reportMs: env.VIEWER_REPORT_MS,
          refreshMs: env.VIEWER_REPORT_MS * 2,
          perAddress: env.VIEWER_SESSIONS_PER_ADDRESS,
          maxPerStream: env.VIEWER_MAX_SESSIONS_PER_STREAM,
          maxSessions: env.VIEWER_MAX_SESSIONS,
          trustProxyHops: env.VIEWER_TRUST_PROXY_HOPS
        }
      : null
  }
}
