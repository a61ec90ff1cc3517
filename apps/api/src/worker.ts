// The queue consumer (and reaper) alone, without HTTP routes being served: `pnpm --filter @livestream/api worker`.
// Operators scale it separately from the api; several consumers may run against one queue.
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { loadConfigOrExit } from './config.js'
import { createLogger } from './logger.js'

const config = loadConfigOrExit('worker')
const logger = createLogger(config.logLevel).child({ role: 'worker' })
const app = await buildApp({ config, logger, consumer: true })
closeWithGrace({ delay: 15_000 }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'closing after an error')
  else app.log.info({ signal }, 'closing')
  await app.close()
})
await app.ready()
app.log.info('worker consuming stream events')
