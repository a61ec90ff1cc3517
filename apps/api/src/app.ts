import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import cors from '@fastify/cors'
import rateLimit from '@fastify/rate-limit'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Config } from './config.js'
import dbPlugin from './plugins/external/db.js'
import redisPlugin from './plugins/external/redis.js'
import swaggerPlugin from './plugins/external/swagger.js'
import authPlugin from './plugins/external/auth.js'
import errorsPlugin, { clientErrorHandler, expectationHandler, frameworkErrorHandler } from './plugins/app/errors.js'
import securityHeaders from './plugins/app/security-headers.js'
import accessLog from './plugins/app/access-log.js'
import servicesPlugin from './plugins/app/services.js'
import operatorAuth from './plugins/app/operators/operator-auth.js'
import observedQueues from './plugins/app/operators/queues.js'
import metricsPlugin from './plugins/app/operators/metrics.js'
import consumerPlugin from './workers/stream-events-consumer.js'
import reaperPlugin from './workers/lost-streams-reaper.js'
import webhooksPlugin from './plugins/app/webhooks/webhooks-plugin.js'
import webhookWorkerPlugin from './workers/webhook-deliveries.js'
import { validatorCompiler } from './plugins/app/validation.js'
import { logSerializers } from './logger.js'
import { HttpError } from './errors.js'
import healthRoutes from './routes/health.js'
import authRoutes from './routes/auth.js'
import streamsRoutes from './routes/streams.js'
import metricsRoutes from './routes/metrics.js'
import adminRoutes from './routes/admin.js'
import liveUpdatesPlugin from './plugins/app/live-updates/live-updates.js'
import liveUpdatesRoutes from './routes/live-updates.js'
import publicStreamsRoutes from './routes/public-streams.js'
import webhooksRoutes from './routes/webhooks.js'
import watchRoutes from './routes/watch.js'
import landingRoutes from './routes/landing.js'

export type { Config } from './config.js'
export { loadConfig, ConfigError } from './config.js'

export interface BuildOptions {
  config: Config
  /** Passed to Fastify: a pino logger, its options, or false. */
  logger?: FastifyServerOptions['logger'] | FastifyServerOptions['loggerInstance']
  /** Overrides for the queue consumer and reaper (tests switch them off). */
  consumer?: boolean
  reaper?: boolean
  /** Overrides WEBHOOK_WORKER_ENABLED for the webhook delivery worker. */
  webhookWorker?: boolean
}

/** Assembles the api: external clients -> domain -> routes. No listen: the server entry and tests decide. */
export async function buildApp(opts: BuildOptions): Promise<FastifyInstance> {
  const { config } = opts
  // Our serializers are forced in every case, an instance included (server.ts passes one): Fastify would otherwise log
  // each request's full URL (`/streams/key?streamKey=` carries a key) and each failed query with its params.
  const logger =
    opts.logger && typeof opts.logger === 'object' && 'child' in opts.logger
      ? { loggerInstance: (opts.logger as FastifyBaseLogger).child({}, { serializers: logSerializers }) }
      : {
          logger:
            opts.logger === undefined || opts.logger === false
              ? false
              : { level: config.logLevel, ...(typeof opts.logger === 'object' ? opts.logger : {}), serializers: logSerializers }
        }
  const app = Fastify({
    ...logger,
    bodyLimit: config.http.bodyLimit,
    connectionTimeout: config.http.connectionTimeout,
    requestTimeout: config.http.requestTimeout,
    keepAliveTimeout: config.http.keepAliveTimeout,
    // Slow clients: Node's defaults (60 s for headers, checked every 30 s) would let a slowloris hold a socket for a
    // minute and a half; ours are configured. These two can only be given when the server is created.
    http: {
      headersTimeout: config.http.headersTimeout,
      requestTimeout: config.http.requestTimeout,
      connectionsCheckingInterval: config.http.connectionsCheckingInterval,
      // Node would answer a bare 400 itself; the hook below answers it in the envelope.
      requireHostHeader: false
    },
    // Connections cut at the socket level (timeouts, malformed HTTP) still get an answer in the envelope.
    clientErrorHandler,
    // What the router refuses before any hook (a path segment too long, bad percent-encoding) too.
    frameworkErrors: frameworkErrorHandler,
    // Long params reach the validator (a clear 400) rather than the router (a bare 414).
    routerOptions: { maxParamLength: 1_000 },
    // Requests that arrive once shutdown has begun get our own 503 (below), in the envelope.
    return503OnClosing: false,
    // One access line per request instead (plugins/app/access-log.ts).
    disableRequestLogging: true
  }).withTypeProvider<TypeBoxTypeProvider>()
  app.setValidatorCompiler(validatorCompiler)
  app.server.on('checkExpectation', expectationHandler)

  await app.register(errorsPlugin)
  // Before any route: it records every route registered after it (the OpenAPI document and its check).
  await app.register(swaggerPlugin, { enabled: config.docsEnabled })
  // Shutting down: what is in flight finishes; anything new is told to go elsewhere, and the connection is closed.
  let closing = false
  app.addHook('preClose', (done) => {
    closing = true
    done()
  })
  app.addHook('onRequest', (_request, reply, done) => {
    if (!closing) return done()
    reply
      .code(503)
      .header('connection', 'close')
      .header('retry-after', '1')
      .send({ success: false, data: null, message: 'the server is shutting down, try again' })
  })
  await app.register(securityHeaders)
  await app.register(accessLog)
  app.addHook('onRequest', (request, _reply, done) => {
    // HTTP/1.1 requires a Host header (RFC 9112 3.2); Node's own refusal of its absence is outside the envelope.
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) return done(new HttpError(400, 'the Host header is required'))
    done()
  })
  if (config.corsOrigins.length) await app.register(cors, { origin: config.corsOrigins })
  await app.register(rateLimit, { global: false })
  await app.register(dbPlugin, { url: config.databaseUrl, poolSize: config.dbPoolSize })
  await app.register(redisPlugin, { url: config.redisUrl })
  await app.register(operatorAuth, { operatorToken: config.operatorToken, metricsToken: config.metricsToken })
  await app.register(observedQueues, { queuePrefix: config.queuePrefix })
  await app.register(metricsPlugin, { queuePrefix: config.queuePrefix, nodeTimeoutMs: config.reaper.nodeTimeoutMs, perRequest: config.metricsEnabled })
  await app.register(servicesPlugin, {
    redisUrl: config.redisUrl,
    queuePrefix: config.queuePrefix,
    streamCacheMs: config.streamCacheMs,
    hashing: config.authHashing,
    urls: { streamServerUrl: config.streamServerUrl, rtmpPublicUrl: config.rtmpPublicUrl },
    viewerReportTtlMs: config.viewerReportTtlMs
  })
  await app.register(authPlugin, {
    secret: config.jwtSecret,
    expiresIn: config.jwtExpiresIn,
    userExists: async (id) => (await app.users.findById(id)) !== null,
    userCacheMs: config.authUserCacheMs
  })
  // Before the consumer and the reaper: every process that changes streams feeds live updates.
  await app.register(liveUpdatesPlugin, {
    redisUrl: config.redisUrl,
    prefix: config.queuePrefix,
    urls: { streamServerUrl: config.streamServerUrl, rtmpPublicUrl: config.rtmpPublicUrl },
    heartbeatMs: config.liveUpdates.heartbeatMs,
    replayEvents: config.liveUpdates.replayEvents,
    replayTtlMs: config.liveUpdates.replayTtlMs
  })
  await app.register(webhooksPlugin, {
    redisUrl: config.redisUrl,
    queuePrefix: config.queuePrefix,
    policy: { allowHttp: config.webhooks.allowHttp, allowPrivate: config.webhooks.allowPrivate },
    timeoutMs: config.webhooks.timeoutMs,
    retryDelaysMs: config.webhooks.retryDelaysMs,
    disableAfterFailedEvents: config.webhooks.disableAfterFailedEvents,
    maxEndpointsPerUser: config.webhooks.maxEndpointsPerUser,
    logRowsPerEndpoint: config.webhooks.logRowsPerEndpoint
  })
  if (opts.webhookWorker ?? config.webhooks.worker.enabled) {
    await app.register(webhookWorkerPlugin, {
      redisUrl: config.redisUrl,
      queuePrefix: config.queuePrefix,
      concurrency: config.webhooks.worker.concurrency,
      lockMs: config.webhooks.worker.lockMs,
      retryDelaysMs: config.webhooks.retryDelaysMs
    })
  }
  if (opts.consumer ?? config.consumer.enabled) {
    await app.register(consumerPlugin, {
      redisUrl: config.redisUrl,
      queuePrefix: config.queuePrefix,
      concurrency: config.consumer.concurrency,
      lockMs: config.consumer.lockMs
    })
  }
  if (opts.reaper ?? config.reaper.enabled) {
    await app.register(reaperPlugin, {
      queuePrefix: config.queuePrefix,
      nodeTimeoutMs: config.reaper.nodeTimeoutMs,
      intervalMs: config.reaper.intervalMs,
      noPublisherTimeoutMs: config.reaper.noPublisherTimeoutMs,
      outboxRelayAfterMs: config.reaper.outboxRelayAfterMs,
      viewerLedgerRetentionMs: config.reaper.viewerLedgerRetentionMs
    })
  }

  await app.register(healthRoutes)
  if (config.metricsEnabled) await app.register(metricsRoutes)
  await app.register(adminRoutes, { loginRateLimit: { max: config.authRateLimit.max, timeWindow: config.authRateLimit.windowMs } })
  await app.register(authRoutes, {
    prefix: '/api/auth',
    rateLimit: { max: config.authRateLimit.max, timeWindow: config.authRateLimit.windowMs }
  })
  await app.register(streamsRoutes, {
    prefix: '/api/livestream',
    urls: { streamServerUrl: config.streamServerUrl, rtmpPublicUrl: config.rtmpPublicUrl }
  })
  await app.register(liveUpdatesRoutes, { prefix: '/api/livestream', maxPerUser: config.liveUpdates.maxPerUser })
  await app.register(publicStreamsRoutes, {
    prefix: '/api/public',
    urls: { streamServerUrl: config.streamServerUrl, rtmpPublicUrl: config.rtmpPublicUrl },
    maxPerAddress: config.liveUpdates.maxPerAddress
  })
  await app.register(webhooksRoutes, { prefix: '/api/webhooks' })
  await app.register(watchRoutes, { urls: { streamServerUrl: config.streamServerUrl, rtmpPublicUrl: config.rtmpPublicUrl }, watch: config.watch })
  await app.register(landingRoutes)
  return app
}
