import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { loadConfigOrExit } from './config.js'
import { createLogger } from './logger.js'

const config = loadConfigOrExit('api')

const logger = createLogger(config.logLevel)
const app = await buildApp({ config, logger })

// In-flight requests finish, the consumer stops taking jobs (unfinished ones return to the queue), then clients close.
closeWithGrace({ delay: 15_000 }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'closing after an error')
  else app.log.info({ signal }, 'closing')
  await app.close()
  logger.flush()
})

await app.listen({ port: config.port, host: config.host })
