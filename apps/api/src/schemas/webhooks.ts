import { Type } from '@sinclair/typebox'
import { PLATFORM_EVENT_TYPES } from '../plugins/app/platform-events.js'
import { Envelope, ListEnvelope, errorResponses, IdParamSchema, PageQuery } from './envelope.js'
import { DisplayText } from './text.js'

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()])
const Instant = Nullable(Type.String({ format: 'date-time' }))

/**
 * The filter of an endpoint. Checked by the domain (unknown types and oversized lists answer a 400 naming the rule);
 * the schema bounds the size of what reaches it and documents the known types.
 */
const EventTypes = Nullable(
  Type.Array(Type.String({ maxLength: 64 }), {
    maxItems: 64,
    description: `the event types this endpoint receives (at most ${PLATFORM_EVENT_TYPES.length}, among: ${PLATFORM_EVENT_TYPES.join(', ')}); null or absent: all`
  })
)

export const WebhookEndpointSchema = Type.Object({
  id: Type.Integer(),
  url: Type.String(),
  description: Nullable(Type.String()),
  event_types: Nullable(Type.Array(Type.String())),
  enabled: Type.Boolean({ description: 'false once disabled for failing (see disabled_reason); POST /enable turns it back on' }),
  disabled_at: Instant,
  disabled_reason: Nullable(Type.String()),
  failure_streak: Type.Integer({ minimum: 0, description: 'events in a row whose delivery failed after every retry' }),
  last_success_at: Instant,
  last_failure_at: Instant,
  previous_secret_expires_at: Nullable(Type.String({ description: 'after a rotation: until when the previous secret still signs' })),
  created_at: Type.String(),
  updated_at: Type.String()
})

/** The answers that make a secret: the only time it is shown. */
const WithSecret = Type.Object({
  ...WebhookEndpointSchema.properties,
  secret: Type.String({ description: 'whsec_ + base64 of 32 bytes: shown once; verify webhook-signature with it' })
})

export const WebhookDeliverySchema = Type.Object({
  id: Type.Integer(),
  event_id: Type.String({ description: 'the webhook-id header: the same on every attempt, for de-duplication' }),
  event_type: Type.String(),
  attempt: Type.Integer({ minimum: 1 }),
  status: Type.Union([Type.Literal('succeeded'), Type.Literal('failed')]),
  http_status: Nullable(Type.Integer()),
  error: Nullable(Type.String()),
  response_excerpt: Nullable(Type.String()),
  duration_ms: Type.Integer({ minimum: 0 }),
  created_at: Type.String()
})

const PingResultSchema = Type.Object({
  event_id: Type.String(),
  delivered: Type.Boolean(),
  http_status: Nullable(Type.Integer()),
  error: Nullable(Type.String()),
  duration_ms: Type.Integer({ minimum: 0 })
})

export const createWebhookSchema = {
  body: Type.Object(
    {
      url: Type.String({ minLength: 1, maxLength: 2048, description: 'https (http only where the operator allows it); never an internal address' }),
      description: Type.Optional(Nullable(DisplayText(200))),
      event_types: Type.Optional(EventTypes)
    },
    { additionalProperties: false }
  ),
  response: { 201: Envelope(WithSecret), ...errorResponses }
}
export const updateWebhookSchema = {
  params: IdParamSchema,
  body: Type.Object(
    {
      url: Type.Optional(createWebhookSchema.body.properties.url),
      description: Type.Optional(Nullable(DisplayText(200))),
      event_types: Type.Optional(EventTypes)
    },
    { additionalProperties: false, minProperties: 1, description: 'what to change; what is absent is kept (the secret never changes here: rotate it)' }
  ),
  response: { 200: Envelope(WebhookEndpointSchema), ...errorResponses }
}
export const listWebhooksSchema = {
  response: { 200: ListEnvelope(Type.Array(WebhookEndpointSchema)), ...errorResponses }
}
export const getWebhookSchema = {
  params: IdParamSchema,
  response: { 200: Envelope(WebhookEndpointSchema), ...errorResponses }
}
export const deleteWebhookSchema = {
  params: IdParamSchema,
  response: { 200: Envelope(Type.Null()), ...errorResponses }
}
export const rotateSecretSchema = {
  params: IdParamSchema,
  response: { 200: Envelope(WithSecret), ...errorResponses }
}
export const enableWebhookSchema = getWebhookSchema
export const pingWebhookSchema = {
  params: IdParamSchema,
  response: { 200: Envelope(PingResultSchema), ...errorResponses }
}
export const deliveriesSchema = {
  params: IdParamSchema,
  querystring: Type.Object(PageQuery, { additionalProperties: false }),
  response: { 200: ListEnvelope(Type.Array(WebhookDeliverySchema)), ...errorResponses }
}
