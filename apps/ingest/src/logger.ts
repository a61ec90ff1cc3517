import pino, { type Logger } from 'pino'
import { loggableError } from '@livestream/db'
import { routeNmsLogs } from './nms.js'

export type { Logger }

export function createLogger(level: string, nodeId: string): Logger {
  // Whatever logs `{ err }` gets it without query parameters (drizzle's messages end with them: a key).
  return pino({ level, base: { nodeId }, serializers: { err: loggableError }, redact: { paths: ['*.streamKey', '*.stream_key', '*.key'], censor: '[redacted]' } })
}

/**
 * Stream names are keys. node-media-server writes them in three shapes: stream paths (`start push /live/<key>`,
 * `streamPath=/live/<key> already has a publisher`), any application's too (`/<app>/<key>`); and, for names it
 * finds invalid (a key pasted with a trailing space), `invalid stream path characters: app=<app>, name=<name>`
 * (rtmp_session.js, flv_session.js), where the name runs to the end of the line and may hold anything.
 */
export function redactStreamPaths(text: string): string {
  return text
    .replace(/\bapp=[\s\S]*?, name=[\s\S]*$/, 'app=[redacted], name=[redacted]')
    .replace(/\bname=[\s\S]*$/, 'name=[redacted]')
    .replace(/\/live\/[^\s/,]+/g, '/live/[redacted]')
    .replace(/(^|[\s=(])\/([A-Za-z0-9_-]+)\/[A-Za-z0-9_-]+(?=$|[\s,)])/g, '$1/$2/[redacted]')
}

/**
 * node-media-server logs through its own singleton (forced to `debug`, printing stream paths, i.e. keys, with
 * console.log). Route it into our logger, keys redacted, at one level below ours so its chatter stays out by default.
 */
export function bridgeMediaServerLogs(logger: Logger): void {
  const child = logger.child({ component: 'node-media-server' })
  routeNmsLogs((message, level) => {
    const line = redactStreamPaths(message)
    if (level === 'error') child.warn(line)
    else child.debug(line)
  })
}
