// `pnpm bench`: every benchmark in turn; each prints its figures and refreshes its section of bench/RESULTS.md.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))
let failed = 0
for (const name of ['api', 'publish', 'consumer', 'ingest', 'latency', 'sse', 'webhooks', 'drain']) {
  console.log(`\n=== bench:${name} ===`)
  const r = spawnSync(process.execPath, [`${here}${name}.mjs`], { stdio: 'inherit', env: process.env })
  if (r.status !== 0) failed++
}
process.exit(failed ? 1 : 0)
