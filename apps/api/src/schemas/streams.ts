import { Type } from '@sinclair/typebox'
import { Envelope, ListEnvelope, errorResponses, IdParamSchema, PageQuery } from './envelope.js'
import { DisplayText } from './text.js'

export const Status = Type.Union([Type.Literal('pending'), Type.Literal('live'), Type.Literal('ended')])
export const Connection = Type.Union([Type.Literal('connected'), Type.Literal('reconnecting'), Type.Literal('awaiting-publisher'), Type.Null()], {
  description:
    "A live stream's publisher: `connected`, `reconnecting` while the reconnect window runs, `awaiting-publisher` when made live by hand (`POST /start`) and no publisher has reached it yet; null when not live"
})
export const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()])

const streamFields = {
  id: Type.Integer(),
  ref_no: Type.String(),
  title: Type.String(),
  status: Status,
  connection: Connection,
  viewer_count: Type.Integer({ minimum: 0, description: 'players watching now, over every ingest node' }),
  peak_viewer_count: Type.Integer({ minimum: 0, description: 'the most players watching at once' }),
  user_id: Type.Integer(),
  playback_id: Type.String(),
  playback_url: Type.String(),
  dash_url: Type.String(),
  ingest_node_id: Nullable(Type.String()),
  ended_reason: Nullable(Type.String()),
  started_at: Nullable(Type.String()),
  ended_at: Nullable(Type.String()),
  created_at: Type.String(),
  updated_at: Type.String()
}
const OwnerSchema = Type.Object({ id: Type.Integer(), display_name: Type.String() })

/** What anyone may see of a stream: no key. */
export const PublicStreamSchema = Type.Object({ ...streamFields, owner: Type.Optional(OwnerSchema) })
/** What the owner sees: the key and the RTMP server URL, the way OBS asks for them. */
export const OwnerStreamSchema = Type.Object({
  ...streamFields,
  owner: Type.Optional(OwnerSchema),
  stream_key: Type.Optional(Type.String()),
  rtmp_url: Type.Optional(Type.String())
})

export const ParticipantSchema = Type.Object({
  id: Type.Integer(),
  stream_id: Type.Integer(),
  user_id: Type.Integer(),
  display_name: Type.String(),
  role: Type.Union([Type.Literal('host'), Type.Literal('viewer')]),
  joined_at: Type.String(),
  left_at: Nullable(Type.String())
})

const Title = DisplayText(200)

export const createStreamSchema = {
  body: Type.Object({ title: Title }, { additionalProperties: false }),
  response: { 201: Envelope(OwnerStreamSchema), ...errorResponses }
}
export const listStreamsSchema = {
  querystring: Type.Object(
    { ...PageQuery, status: Type.Optional(Status), user_id: Type.Optional(Type.Integer({ minimum: 1, maximum: 2 ** 53 - 1 })) },
    { additionalProperties: false }
  ),
  response: { 200: ListEnvelope(Type.Array(PublicStreamSchema)), ...errorResponses }
}
export const getStreamSchema = {
  params: IdParamSchema,
  response: { 200: Envelope(OwnerStreamSchema), ...errorResponses }
}
export const getByKeySchema = {
  querystring: Type.Object({ streamKey: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false }),
  response: { 200: Envelope(OwnerStreamSchema), ...errorResponses }
}
export const patchStatusSchema = {
  params: IdParamSchema,
  body: Type.Object({ status: Status }, { additionalProperties: false }),
  response: { 200: Envelope(OwnerStreamSchema), ...errorResponses }
}
export const lifecycleActionSchema = {
  params: IdParamSchema,
  response: { 200: Envelope(OwnerStreamSchema), ...errorResponses }
}
export const joinSchema = {
  body: Type.Object({ stream_id: Type.Integer({ minimum: 1, maximum: 2 ** 53 - 1 }) }, { additionalProperties: false }),
  response: { 200: Envelope(ParticipantSchema), ...errorResponses }
}
export const leaveSchema = {
  params: IdParamSchema,
  response: { 200: Envelope(ParticipantSchema), ...errorResponses }
}
export const participantsSchema = {
  params: IdParamSchema,
  querystring: Type.Object(PageQuery, { additionalProperties: false }),
  response: { 200: ListEnvelope(Type.Array(ParticipantSchema)), ...errorResponses }
}
