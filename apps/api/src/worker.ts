// The queue consumer (and reaper) alone, without HTTP routes being served: `pnpm --filter @livestream/api worker`.
// Operators scale it separately from the api; several consumers may run against one queue.
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { loadConfigOrExit } from './config.js'
import { createLogger } from './logger.js'
import { serveWorkerMetrics } from './worker-metrics.js'

const config = loadConfigOrExit('worker')
const logger = createLogger(config.logLevel).child({ role: 'worker' })
const app = await buildApp({ config, logger, consumer: true })
let metrics: Awaited<ReturnType<typeof serveWorkerMetrics>> | undefined
closeWithGrace({ delay: 15_000 }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'closing after an error')
  else app.log.info({ signal }, 'closing')
  await metrics?.close()
  await app.close()
})
await app.ready()
// Its own metrics (events applied, reaper actions) on WORKER_METRICS_PORT, for Prometheus; off when 0.
if (config.workerMetricsPort > 0) metrics = await serveWorkerMetrics(app, config.workerMetricsPort, config.host)
app.log.info({ metricsPort: metrics?.port }, 'worker consuming stream events')
