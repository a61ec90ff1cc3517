import pino from 'pino'

/** The process logger: JSON, with secrets redacted wherever they might appear. */
export function createLogger(level: string) {
  return pino({
    level,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        '*.password',
        '*.stream_key',
        '*.streamKey',
        '*.token'
      ],
      censor: '[redacted]'
    }
  })
}
