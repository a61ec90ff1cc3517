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

// SIGTERM (the orchestrator scaling in or rolling out) drains the node: new publishes go elsewhere, publishers are
// moved off one at a time, and the node closes once it holds nothing (or at the drain's deadline). The operators'
// `POST /admin/drain` does the same. With DRAIN_SECONDS=0, and on SIGINT (Ctrl-C), it closes at once: no new publishes,
// packaging ends, unpublish events go out, then the queue and clients close.
let stopping = false
const stop = (why: string, graceMs: number) => {
  if (stopping) return
  stopping = true
  log.info({ why }, 'shutting down')
  const force = setTimeout(() => {
    log.error('shutdown took too long; exiting')
    process.exit(1)
  }, graceMs)
  force.unref()
  node.close().then(
    () => process.exit(0),
    (err: unknown) => {
      log.error({ err: loggableError(err) }, 'shutdown failed')
      process.exit(1)
    }
  )
}
const CLOSE_GRACE_MS = 30_000
void node.drained.then((why) => stop(`drain over (${why})`, CLOSE_GRACE_MS))
process.on('SIGINT', () => stop('SIGINT', CLOSE_GRACE_MS))
process.on('SIGTERM', () => {
  if (config.drainMs === 0) return stop('SIGTERM', CLOSE_GRACE_MS)
  const { started } = node.drain('SIGTERM')
  if (!started) log.info('SIGTERM: already draining')
})
