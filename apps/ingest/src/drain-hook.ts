/**
 * The pre-stop hook of an ingest container (`node dist/drain-hook.js`): asks the node to drain (`POST /admin/drain`
 * with OPERATOR_TOKEN) and waits until it has moved its publishers away and exited, or its drain deadline passed.
 * The orchestrator sends SIGTERM only after the hook returns; SIGTERM drains too, so without OPERATOR_TOKEN (the call
 * answers 403) the hook returns at once and SIGTERM does the same work. Exit code 0 in every case: a failed hook must
 * not keep a pod from stopping.
 */
import { loadOrExit } from '@livestream/config'
import { loadConfig } from './config.js'

const config = loadOrExit('ingest drain hook', () => loadConfig())
const base = `http://127.0.0.1:${config.httpPort}`
const deadline = Date.now() + config.drainMs + config.reconnectWindowMs + 5_000

const started = await fetch(`${base}/admin/drain`, {
  method: 'POST',
  headers: config.operatorToken ? { authorization: `Bearer ${config.operatorToken}` } : {},
  signal: AbortSignal.timeout(5_000)
}).then(
  (res) => res.ok,
  () => false
)
if (started) {
  // The node answers until it has closed; then the connection is refused.
  while (Date.now() < deadline) {
    const up = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2_000) }).then(
      () => true,
      () => false
    )
    if (!up) break
    await new Promise((r) => setTimeout(r, 1_000))
  }
}
process.exit(0)
