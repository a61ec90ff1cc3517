/** What an error may put in a log line: the driver's diagnosis, never the query's values. */
export interface LoggableError {
  type: string
  message: string
  code?: string | number
  errno?: number
  sqlState?: string
}

interface ErrorLike {
  name?: unknown
  message?: unknown
  code?: unknown
  errno?: unknown
  sqlState?: unknown
  cause?: unknown
  query?: unknown
  params?: unknown
}

const isObject = (v: unknown): v is ErrorLike => typeof v === 'object' && v !== null

/**
 * Drizzle wraps every driver error in one whose message is `Failed query: <sql>\nparams: <values>`, and the values
 * of a publish check are a stream key. Keep the driver's error (its code, errno, SQL state and message) instead, and
 * even there drop quoted literals: MySQL echoes values in quotes (`Duplicate entry '…'`, `Incorrect string value: '…'`).
 */
export function errorForLog(err: unknown): LoggableError {
  const wrapped = isObject(err) && 'query' in err && 'params' in err
  const inner: unknown = wrapped ? (err as ErrorLike).cause : err
  const e: ErrorLike = isObject(inner) ? inner : { message: inner === undefined || inner === null ? '' : String(inner) }
  const out: LoggableError = {
    type: typeof e.name === 'string' ? e.name : wrapped ? 'DatabaseError' : 'Error',
    message: scrub(typeof e.message === 'string' ? e.message : '')
  }
  if (typeof e.code === 'string' || typeof e.code === 'number') out.code = e.code
  if (typeof e.errno === 'number') out.errno = e.errno
  if (typeof e.sqlState === 'string') out.sqlState = e.sqlState
  if (!out.message && !out.code) out.message = wrapped ? 'query failed' : 'unknown error'
  return out
}

function scrub(message: string): string {
  return message
    .replace(/\n?params:[\s\S]*$/, '')
    .replace(/'(?:[^'\\]|\\.)*'/g, "'…'")
    .replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
    .slice(0, 500)
}
