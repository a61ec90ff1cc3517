import type { StaticDecode, TObject } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'

/** The environment as a process sees it: names to strings, any of them possibly unset. */
export type EnvSource = Readonly<Record<string, string | undefined>>

/** Thrown when the environment is unusable; the message names the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** A ConfigError in the one shape operators and tests read: `invalid environment variable NAME: reason`. */
export function invalidVariable(name: string, reason: string): ConfigError {
  return new ConfigError(`invalid environment variable ${name}: ${reason}`)
}

/**
 * Reads the variables `schema` declares from `source` (by default `process.env`, and the only place that reads it),
 * fills defaults, coerces strings to the declared types and decodes transforms (`Flag` to a boolean). An unset or
 * empty variable takes its default. Variables the schema does not declare are ignored.
 *
 * @throws ConfigError naming the first variable that does not fit, with the schema's `errorMessage` when it has one.
 */
export function loadEnv<S extends TObject>(schema: S, source: EnvSource = process.env): StaticDecode<S> {
  const raw: Record<string, unknown> = {}
  for (const key of Object.keys(schema.properties)) {
    const value = source[key]
    if (value !== undefined && value !== '') raw[key] = value
  }
  const env = Value.Convert(schema, Value.Default(schema, raw))
  const first = Value.Errors(schema, env).First()
  if (first) {
    const custom: unknown = first.schema.errorMessage
    throw invalidVariable(first.path.slice(1), typeof custom === 'string' ? custom : first.message)
  }
  return Value.Decode(schema, env)
}

/**
 * For process entries: `load()`'s config, or the ConfigError's message on stderr as `role: message` and exit code 2
 * (a supervisor should not restart a process whose environment will refuse it again). Other errors propagate.
 */
export function loadOrExit<T>(role: string, load: () => T): T {
  try {
    return load()
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${role}: ${err.message}\n`)
      process.exit(2)
    }
    throw err
  }
}
