import { createRequire } from 'node:module'
import pino, { type Logger } from 'pino'

export type { Logger }

export function createLogger(level: string, nodeId: string): Logger {
  return pino({ level, base: { nodeId }, redact: { paths: ['*.streamKey', '*.stream_key', '*.key'], censor: '[redacted]' } })
}

/** Stream paths carry the key (`/live/<key>`): replaced before anything reaches a log line. */
export function redactStreamPaths(text: string): string {
  return text.replace(/\/live\/[^\s/,]+/g, '/live/[redacted]')
}

const require = createRequire(import.meta.url)

/**
 * node-media-server logs through its own singleton (forced to `debug`, printing stream paths, i.e. keys, with
 * console.log). Route it into our logger, keys redacted, at one level below ours so its chatter stays out by default.
 */
export function bridgeMediaServerLogs(logger: Logger): void {
  const nmsLogger = require('node-media-server/src/core/logger.js') as {
    level: string
    log: (message: string, level?: string) => void
  }
  const child = logger.child({ component: 'node-media-server' })
  nmsLogger.log = (message: string, level = 'info') => {
    const line = redactStreamPaths(String(message))
    if (level === 'error') child.warn(line)
    else child.debug(line)
  }
}
