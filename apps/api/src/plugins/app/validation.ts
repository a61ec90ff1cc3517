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
    if (convert) value = Value.Convert(schema as TSchema, value)
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
