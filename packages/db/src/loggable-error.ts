/**
 * What of an error may be written to a log, for both apps: enough to diagnose, never the values a query carried (the
 * queries of this package carry stream keys and password hashes as parameters, and drizzle's errors print theirs). A
 * type alias, not an interface, so it fits Fastify's serializer signature (which wants an index signature).
 */
export type LoggableError = {
  type: string
  message: string
  code?: string
  errno?: number
  sqlState?: string
  query?: string
  stack: string
  cause?: LoggableError
}

// The SQL text drizzle sends has placeholders; the values ride in `params`, and drizzle's own message appends them
// ("Failed query: ...\nparams: <values>"), so a failed key lookup or stream insert would print the stream key.
const PARAMS_TAIL = /\s*\nparams:[\s\S]*$/
// MySQL's own messages quote the value at fault ("Duplicate entry '<key>' for key ..."): quoted text goes.
const QUOTED = /'(?:[^'\\]|\\.)*'/g
const DOUBLE_QUOTED = /"(?:[^"\\]|\\.)*"/g

const isDbError = (e: Record<string, unknown>) =>
  ('params' in e && 'query' in e) || typeof e.sqlState === 'string' || typeof e.sqlMessage === 'string'

function messageOf(e: Record<string, unknown>): string {
  const raw = typeof e.message === 'string' ? e.message : String(e)
  if (typeof e.query === 'string' && 'params' in e) return `Failed query: ${e.query}`
  const withoutParams = raw.replace(PARAMS_TAIL, '')
  return isDbError(e) ? withoutParams.replace(QUOTED, "'…'").replace(DOUBLE_QUOTED, '"…"') : withoutParams
}

/**
 * A copy of `err` safe to log: type, message (database errors lose their parameters and quoted values), code, errno,
 * sqlState, the query text with its placeholders, the stack frames (the stack's first line repeats the message, so
 * it is rebuilt), and the same for each cause. Driver properties such as mysql2's `sql` (the query with its values
 * inlined) and `sqlMessage` are left out on purpose.
 */
export function loggableError(err: unknown, depth = 0): LoggableError {
  // Also the logger's `err` serializer (logger.ts), so it sees every error any code logs.
  if (!err || typeof err !== 'object') return { type: typeof err, message: String(err), stack: String(err) }
  const e = err as Record<string, unknown>
  // Already made safe (a caller passed loggableError(err) to a logger whose serializer is this): as it is.
  if (Object.getPrototypeOf(e) === Object.prototype && typeof e.type === 'string' && typeof e.stack === 'string') return e as LoggableError
  // drizzle's errors keep the name 'Error'; their class says more. Plain objects logged as errors keep their name.
  const ctor = (e.constructor as { name?: string } | undefined)?.name
  const type = ctor && ctor !== 'Object' ? ctor : typeof e.name === 'string' ? e.name : 'Error'
  const message = messageOf(e)
  const frames = typeof e.stack === 'string' ? e.stack.split('\n').filter((line) => /^\s+at /.test(line)) : []
  const out: LoggableError = { type, message, stack: [`${type}: ${message}`, ...frames].join('\n') }
  if (typeof e.code === 'string') out.code = e.code
  if (typeof e.errno === 'number') out.errno = e.errno
  if (typeof e.sqlState === 'string') out.sqlState = e.sqlState
  if (typeof e.query === 'string') out.query = e.query
  if (e.cause !== undefined && depth < 4) out.cause = loggableError(e.cause, depth + 1)
  return out
}
