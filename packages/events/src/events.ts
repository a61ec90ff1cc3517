import { Type, type Static, type TSchema } from '@sinclair/typebox'

/** Fields every ingest event carries. */
const base = {
  /** Unique event id; also the BullMQ job id, so a re-sent event is dropped by the queue. */
  id: Type.String({ minLength: 8, maxLength: 128, pattern: '^[A-Za-z0-9_.-]+$' }),
  /** The ingest node that saw it. */
  nodeId: Type.String({ minLength: 1, maxLength: 128 }),
  /** node-media-server's session id of the RTMP connection. */
  sessionId: Type.String({ minLength: 1, maxLength: 128 }),
  /** When it happened on the node (ISO 8601, ms). */
  at: Type.String({ format: 'date-time', minLength: 20, maxLength: 40 }),
  streamId: Type.Integer({ minimum: 1 })
}

const event = <T extends string, P extends Record<string, TSchema>>(type: T, props: P) =>
  Type.Object({ type: Type.Literal(type), ...base, ...props }, { additionalProperties: false })

/** An accepted RTMP publish: the stream is live on `nodeId`, playable under `playbackBaseUrl`. */
export const StreamPublishedSchema = event('stream.published', {
  playbackBaseUrl: Type.String({ minLength: 1, maxLength: 512 })
})

/**
 * The publish is over for good: the reconnect window passed (`publisher-left`; `key-rotated` when the publisher was cut
 * because the key was rotated and nobody came back with the new one), the node shut down, or the stream was ended or
 * deleted in the database (`key-revoked`).
 */
export const StreamUnpublishedSchema = event('stream.unpublished', {
  reason: Type.Union([
    Type.Literal('publisher-left'),
    Type.Literal('node-shutdown'),
    Type.Literal('key-revoked'),
    Type.Literal('key-rotated')
  ])
})

/** A viewer started playing from the node; `userId` when the viewer presented a valid token. */
export const ViewerJoinedSchema = event('viewer.joined', {
  userId: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])
})

/** A viewer stopped playing. */
export const ViewerLeftSchema = event('viewer.left', {
  userId: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])
})

/**
 * The publisher's connection dropped and the node waits out `RECONNECT_WINDOW_MS` for it: the stream stays `live`, its
 * connection shows `reconnecting`. Followed by `stream.resumed` (it came back here), `stream.published` from another
 * node (it came back there) or `stream.unpublished` (the window passed).
 */
export const StreamReconnectingSchema = event('stream.reconnecting', {})

/** The publisher came back to the same node within the reconnect window: the connection is `connected` again. */
export const StreamResumedSchema = event('stream.resumed', {})

/**
 * How many players this node serves the stream to now (see the README's "What counts as a viewer"). Sent when the
 * figure changes, at most every few seconds per stream; the api sums the fresh reports of every node.
 */
export const StreamViewersSchema = event('stream.viewers', {
  viewers: Type.Integer({ minimum: 0, maximum: 10_000_000 })
})

export const StreamEventSchema = Type.Union([
  StreamPublishedSchema,
  StreamUnpublishedSchema,
  StreamReconnectingSchema,
  StreamResumedSchema,
  StreamViewersSchema,
  ViewerJoinedSchema,
  ViewerLeftSchema
])

export type StreamPublished = Static<typeof StreamPublishedSchema>
export type StreamUnpublished = Static<typeof StreamUnpublishedSchema>
export type StreamReconnecting = Static<typeof StreamReconnectingSchema>
export type StreamResumed = Static<typeof StreamResumedSchema>
export type StreamViewers = Static<typeof StreamViewersSchema>
export type ViewerJoined = Static<typeof ViewerJoinedSchema>
export type ViewerLeft = Static<typeof ViewerLeftSchema>
export type StreamEvent = Static<typeof StreamEventSchema>
export type StreamEventType = StreamEvent['type']

/** A node's liveness report, kept in Redis (not the queue) so a backlog never delays it. */
export const NodeHeartbeatSchema = Type.Object(
  {
    nodeId: Type.String({ minLength: 1, maxLength: 128 }),
    playbackBaseUrl: Type.String({ maxLength: 512 }),
    /** Epoch ms of the report. */
    at: Type.Integer({ minimum: 0 }),
    /** Streams this node holds now, counting those inside their reconnect window. */
    streamIds: Type.Array(Type.Integer({ minimum: 1 }), { maxItems: 10_000 })
  },
  // Fields the reader does not know are ignored, not a reason to drop the beat: during a rolling upgrade older nodes
  // still send `bootId` (removed, never read), and a refused beat would make the reaper end their streams.
  { additionalProperties: true }
)
export type NodeHeartbeat = Static<typeof NodeHeartbeatSchema>
