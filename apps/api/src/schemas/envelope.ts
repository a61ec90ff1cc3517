import { Type, type TSchema } from '@sinclair/typebox'

/** `{ success, data, message, count? }`: every answer. */
export const Envelope = <T extends TSchema>(data: T) =>
  Type.Object({ success: Type.Boolean(), data, message: Type.String() })

/** A page of results: `count` is the total number of matches, not the page length. */
export const ListEnvelope = <T extends TSchema>(data: T) =>
  Type.Object({ success: Type.Boolean(), data, message: Type.String(), count: Type.Integer() })

export const ErrorEnvelopeSchema = Type.Object(
  {
    success: Type.Literal(false),
    data: Type.Null(),
    message: Type.String({ description: 'What went wrong; generic for 5xx (the detail is logged with the request id)' })
  },
  { description: 'An error, in the envelope: 400 invalid input (the message names the field), 401 no or bad token, 403 not yours, 404, 409 conflict with the lifecycle, 413, 429 rate-limited, 503 a dependency is down (with Retry-After)' }
)

/** The security requirement of a route that needs a user's token (`bearerAuth` in the OpenAPI document). */
export const BearerSecurity = [{ bearerAuth: [] as string[] }]

/** Error statuses every route may answer with, in the envelope. */
export const errorResponses = {
  '4xx': ErrorEnvelopeSchema,
  '5xx': ErrorEnvelopeSchema
}

export const PageQuery = {
  page: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1 }),
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 })
}

/** Numeric ids up to MySQL's unsigned range we use; anything else is a 400, never a 500. */
export const IdParamSchema = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2 ** 53 - 1 }) })
