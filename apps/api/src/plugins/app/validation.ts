import type { FastifySchema, FastifySchemaCompiler } from 'fastify'
import type { TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { Value } from '@sinclair/typebox/value'

const describe = (part: string, path: string, raw: string) => {
  const message = raw === 'Expected required property' ? 'is required' : raw === 'Unexpected property' ? 'is not allowed' : raw
  const field = path.replace(/^\//, '').replaceAll('/', '.')
  return field ? `${part === 'body' ? '' : `${part} `}${field}: ${message}` : `${part}: ${message}`
}

/**
 * TypeBox's conversion reads "1.5" or "1e3" as numbers; an id or a page number is plain digits or it is wrong.
 * Such strings are left as strings so the check refuses them.
 */
function strictIntegers(schema: TSchema, value: unknown): unknown {
  if (!value || typeof value !== 'object' || !schema.properties) return value
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) }
  for (const [key, prop] of Object.entries(schema.properties as Record<string, TSchema>)) {
    const v = out[key]
    if (prop.type === 'integer' && typeof v === 'string' && !/^-?\d{1,16}$/.test(v)) out[key] = `not-an-integer:${v.slice(0, 20)}`
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
  return (input: unknown) => {
    let value = Value.Default(schema as TSchema, input === undefined || input === null ? (part === 'body' ? input : {}) : input)
    if (convert) value = Value.Convert(schema as TSchema, strictIntegers(schema as TSchema, value))
    if (check.Check(value)) return { value }
    const first = check.Errors(value).First()
    const error = new Error(first ? describe(part, first.path, first.message) : `${part}: invalid`) as Error & {
      validation: unknown
      statusCode: number
    }
    error.validation = [first]
    error.statusCode = 400
    return { error }
  }
}
