import { loggableError } from '@livestream/db'
import { loadOrExit } from '@livestream/config'
import { loadConfig } from './config.js'
import { startIngest } from './ingest.js'
import { createLogger } from './logger.js'
import { ALLOCATOR_ENV } from './rtmp-limits.js'

const config = loadOrExit('ingest', () => loadConfig())
const log = createLogger(config.logLevel, config.nodeId)
if (process.platform === 'linux' && !config.mallocPinned) {
  log.warn(
    { fix: `start ingest with ${Object.entries(ALLOCATOR_ENV).map(([k, v]) => `${k}=${v}`).join(' ')}` },
    "glibc's mmap threshold is not pinned: memory freed after bursts of connections may stay resident (see rtmp-limits.ts)"
  )
}

const node = await startIngest(config, log)

// Graceful stop: no new publishes, packaging ends, unpublish events go out, then the queue and clients close.
let stopping = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'shutting down')
    const force = setTimeout(() => {
      log.error('shutdown took too long; exiting')
      process.exit(1)
    }, 30_000)
    force.unref()
    node.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err: loggableError(err) }, 'shutdown failed')
        process.exit(1)
      }
    )
  })
}
