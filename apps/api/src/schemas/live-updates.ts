import { Type } from '@sinclair/typebox'
import { Envelope, errorResponses, IdParamSchema } from './envelope.js'
import { TICKET_PATTERN } from '../plugins/external/auth.js'
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

/** Where to resume: a new EventSource (one made after a ticket expired) cannot send Last-Event-ID, a URL can. */
const LastEventIdQuery = Type.String({ maxLength: 64, description: 'as the Last-Event-ID header, which wins when both are sent' })

export const streamEventsSchema = {
  params: IdParamSchema,
  headers: LastEventIdHeaders,
  querystring: Type.Object({
    ticket: Type.Optional(
      Type.String({
        pattern: TICKET_PATTERN,
        description: 'instead of the Authorization header (a browser EventSource sends none): from POST /streams/{id}/events/ticket'
      })
    ),
    last_event_id: Type.Optional(LastEventIdQuery)
  }),
  response: EventStream
}

export const LiveUpdateTicketSchema = Type.Object({
  ticket: Type.String({ description: 'opens this stream\'s live updates for the user it was issued to, until expires_at (reconnections included)' }),
  expires_at: Type.String(),
  events_url: Type.String({ description: 'the events path with the ticket, ready for `new EventSource(base + events_url)`' })
})

export const liveUpdateTicketSchema = {
  params: IdParamSchema,
  response: { 201: Envelope(LiveUpdateTicketSchema), ...errorResponses }
}

export const publicStreamSchema = {
  params: PlaybackIdParamSchema,
  response: { 200: Envelope(PublicLiveStreamSchema), ...errorResponses }
}

export const publicStreamEventsSchema = {
  params: PlaybackIdParamSchema,
  headers: LastEventIdHeaders,
  querystring: Type.Object({ last_event_id: Type.Optional(LastEventIdQuery) }),
  response: EventStream
}

export const publicPreflightSchema = {
  params: PlaybackIdParamSchema,
  response: { 204: { description: 'CORS preflight: GET from any origin, with Last-Event-ID', type: 'null' }, ...errorResponses }
}
