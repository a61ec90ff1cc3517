import { Writable } from 'node:stream'
import pino, { type Logger } from 'pino'

/** A pino logger whose lines are kept in memory, for tests that check what was logged. */
export function capturedLogger(level: pino.Level = 'debug'): { log: Logger; lines: string[] } {
  const lines: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString())
      done()
    }
  })
  return { log: pino({ level }, sink), lines }
}
