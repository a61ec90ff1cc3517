import type { FastifySchema, FastifySchemaCompiler } from 'fastify'
import type { TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { Value } from '@sinclair/typebox/value'

const describe = (part: string, path: string, raw: string, custom?: unknown) => {
  const message = typeof custom === 'string' && raw.startsWith('Expected string to match') ? custom : raw === 'Expected required property' ? 'is required' : raw === 'Unexpected property' ? 'is not allowed' : raw
  const field = path.replace(/^\//, '').replaceAll('/', '.')
  return field ? `${part === 'body' ? '' : `${part} `}${field}: ${message}` : `${part}: ${message}`
}

const INTEGER_TEXT = /^-?\d{1,16}$/

/**
 * TypeBox's conversion reads "1.5" or "1e3" as numbers; an id or a page number is plain digits or it is wrong.
 * Such strings are left as strings so the check refuses them.
 */
function strictIntegers(schema: TSchema, value: unknown): unknown {
  if (!value || typeof value !== 'object' || !schema.properties) return value
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) }
  for (const [key, prop] of Object.entries(schema.properties as Record<string, TSchema>)) {
    const v = out[key]
    if (prop.type === 'integer' && typeof v === 'string' && !INTEGER_TEXT.test(v)) out[key] = `not-an-integer:${v.slice(0, 20)}`
  }
  return out
}

/** True when the schema, or anything inside it, declares a default: only then is `Value.Default` worth its cost. */
function hasDefaults(node: unknown): boolean {
  if (!node || typeof node !== 'object') return false
  if (Array.isArray(node)) return node.some(hasDefaults)
  if ('default' in node) return true
  return Object.values(node).some(hasDefaults)
}

interface FlatField {
  key: string
  integer: boolean
  hasDefault: boolean
  default: unknown
}

/**
 * Params and query strings are flat objects of integers, strings and string literals. For those, conversion is a
 * loop over a precomputed field list instead of TypeBox's generic walk (which runs on every request of every
 * route). Anything else returns null and goes through `Value.Default` + `Value.Convert`.
 */
function flatPlan(schema: TSchema): FlatField[] | null {
  if (schema.type !== 'object' || !schema.properties) return null
  const fields: FlatField[] = []
  for (const [key, prop] of Object.entries(schema.properties as Record<string, TSchema>)) {
    const literals = Array.isArray(prop.anyOf) && (prop.anyOf as TSchema[]).every((s) => typeof s.const === 'string')
    if (prop.type !== 'integer' && prop.type !== 'string' && !literals) return null
    if ('default' in prop && typeof prop.default === 'object' && prop.default !== null) return null
    fields.push({ key, integer: prop.type === 'integer', hasDefault: 'default' in prop, default: prop.default })
  }
  return fields
}

function convertFlat(fields: FlatField[], input: object): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const key in input) out[key] = (input as Record<string, unknown>)[key]
  for (const f of fields) {
    const v = out[f.key]
    if (v === undefined) {
      if (f.hasDefault) out[f.key] = f.default
    } else if (f.integer && typeof v === 'string') {
      out[f.key] = INTEGER_TEXT.test(v) ? Number(v) : `not-an-integer:${v.slice(0, 20)}`
    }
  }
  return out
}

/**
 * TypeBox-compiled validation. Params and query strings arrive as text and are converted to their schema types;
 * bodies are JSON and are taken as sent: a string where a number belongs is a 400, not a guess.
 * The message names the field.
 */
export const validatorCompiler: FastifySchemaCompiler<FastifySchema> = ({ schema, httpPart }) => {
  const check = TypeCompiler.Compile(schema as TSchema)
  const part = httpPart === 'querystring' ? 'query' : (httpPart ?? 'input')
  const convert = part !== 'body'
  const defaults = hasDefaults(schema)
  const flat = convert ? flatPlan(schema as TSchema) : null
  const prepare = (input: unknown): unknown => {
    if (flat && (input === undefined || input === null || (typeof input === 'object' && !Array.isArray(input)))) {
      return convertFlat(flat, input ?? {})
    }
    let value = input
    if (defaults || convert) value = Value.Default(schema as TSchema, input === undefined || input === null ? (part === 'body' ? input : {}) : input)
    if (convert) value = Value.Convert(schema as TSchema, strictIntegers(schema as TSchema, value))
    return value
  }
  return (input: unknown) => {
    const value = prepare(input)
    if (check.Check(value)) return { value }
    const first = check.Errors(value).First()
    const error = new Error(first ? describe(part, first.path, first.message, (first.schema as { errorMessage?: unknown }).errorMessage) : `${part}: invalid`) as Error & {
      validation: unknown
      statusCode: number
    }
    error.validation = [first]
    error.statusCode = 400
    return { error }
  }
}
