import { Type } from '@sinclair/typebox'
import { Envelope, errorResponses, IdParamSchema } from './envelope.js'
import { Connection, Nullable, Status } from './streams.js'

/** A playback id as the api makes them (16 base64url characters); anything of another shape is a 400. */
export const PlaybackIdParamSchema = Type.Object({ playback_id: Type.String({ pattern: '^[A-Za-z0-9_-]{8,64}$' }) })

/** What anyone holding a playback id may read of its stream: no key, owner, node or internal id. */
export const PublicLiveStreamSchema = Type.Object({
  playback_id: Type.String(),
  title: Type.String(),
  status: Status,
  connection: Connection,
  viewer_count: Type.Integer({ minimum: 0 }),
  peak_viewer_count: Type.Integer({ minimum: 0 }),
  playback_url: Type.String(),
  dash_url: Type.String(),
  started_at: Nullable(Type.String()),
  ended_at: Nullable(Type.String())
})

const LastEventIdHeaders = Type.Object({
  'last-event-id': Type.Optional(
    Type.String({ maxLength: 64, description: 'the `id:` of the last event received: what came after it is sent first' })
  )
})

/** The answer of an SSE route: a stream of events, not JSON (see the README's "Live updates"). */
const EventStream = {
  200: {
    description:
      'text/event-stream: `snapshot`, `status`, `participants` (members only), `viewers` events, each with the whole state as JSON; `: hb` comments as heartbeats',
    content: { 'text/event-stream': { schema: Type.String() } }
  },
  ...errorResponses
}

export const streamEventsSchema = {
  params: IdParamSchema,
  headers: LastEventIdHeaders,
  response: EventStream
}

export const publicStreamSchema = {
  params: PlaybackIdParamSchema,
  response: { 200: Envelope(PublicLiveStreamSchema), ...errorResponses }
}

export const publicStreamEventsSchema = {
  params: PlaybackIdParamSchema,
  headers: LastEventIdHeaders,
  response: EventStream
}

export const publicPreflightSchema = {
  params: PlaybackIdParamSchema,
  response: { 204: { description: 'CORS preflight: GET from any origin, with Last-Event-ID', type: 'null' }, ...errorResponses }
}
