import { Type } from '@sinclair/typebox'
import { Envelope, errorResponses } from './envelope.js'

const Check = Type.Union([Type.Literal('ok'), Type.Literal('down')])
const ChecksSchema = Type.Object({ database: Check, redis: Check })

export const livenessSchema = {
  summary: 'Liveness: the process answers',
  response: { 200: Envelope(Type.Object({ status: Type.Literal('ok') })), ...errorResponses }
}
export const readinessSchema = {
  summary: 'Readiness: MySQL and Redis answer',
  response: {
    200: Envelope(ChecksSchema),
    // Not ready: `success` is false and `data` says what is down (the one error answer whose data is not null).
    503: Type.Object({ success: Type.Literal(false), data: ChecksSchema, message: Type.String() }, { description: 'Not ready: what is down' }),
    ...errorResponses
  }
}
