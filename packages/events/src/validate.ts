import { TypeCompiler } from '@sinclair/typebox/compiler'
import {
  NodeHeartbeatSchema,
  StreamPublishedSchema,
  StreamReconnectingSchema,
  StreamResumedSchema,
  StreamUnpublishedSchema,
  StreamViewersSchema,
  ViewerJoinedSchema,
  ViewerLeftSchema,
  type NodeHeartbeat,
  type StreamEvent,
  type StreamEventType
} from './events.js'
import { FormatRegistry } from '@sinclair/typebox'

// TypeBox leaves formats to the host; the contract only needs date-time.
if (!FormatRegistry.Has('date-time')) {
  FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)) && /^\d{4}-\d{2}-\d{2}T/.test(v))
}

// Discriminated on `type`: checking against the one matching schema gives errors that name the field,
// where a union check would only say "expected union value".
const checks: Record<StreamEventType, ReturnType<typeof TypeCompiler.Compile>> = {
  'stream.published': TypeCompiler.Compile(StreamPublishedSchema),
  'stream.unpublished': TypeCompiler.Compile(StreamUnpublishedSchema),
  'stream.reconnecting': TypeCompiler.Compile(StreamReconnectingSchema),
  'stream.resumed': TypeCompiler.Compile(StreamResumedSchema),
  'stream.viewers': TypeCompiler.Compile(StreamViewersSchema),
  'viewer.joined': TypeCompiler.Compile(ViewerJoinedSchema),
  'viewer.left': TypeCompiler.Compile(ViewerLeftSchema)
}

function checkFor(value: unknown) {
  const type = (value as { type?: unknown } | null)?.type
  return typeof type === 'string' && Object.hasOwn(checks, type) ? checks[type as StreamEventType] : undefined
}
const heartbeatCheck = TypeCompiler.Compile(NodeHeartbeatSchema)

/** Thrown for a payload that can never be applied (wrong shape): the consumer does not retry it. */
export class InvalidEventError extends Error {
  override name = 'InvalidEventError'
}

function describe(errors: Iterable<{ path: string; message: string }>): string {
  const parts: string[] = []
  for (const e of errors) {
    parts.push(`${e.path || '/'}: ${e.message}`)
    if (parts.length >= 3) break
  }
  return parts.join('; ')
}

/** Validates an unknown payload as a stream event; throws InvalidEventError naming the bad field. */
export function parseStreamEvent(value: unknown): StreamEvent {
  const check = checkFor(value)
  if (!check) throw new InvalidEventError('invalid stream event: /type: unknown event type')
  if (check.Check(value)) return value as StreamEvent
  throw new InvalidEventError(`invalid stream event: ${describe(check.Errors(value))}`)
}

/** Validates a heartbeat read back from Redis; null when it is not one. */
export function parseHeartbeat(value: unknown): NodeHeartbeat | null {
  return heartbeatCheck.Check(value) ? value : null
}

/** The heartbeat hash as Redis' HGETALL returns it (node id -> JSON), read into valid heartbeats; the rest is skipped. */
export function parseHeartbeats(hash: Record<string, string>): Map<string, NodeHeartbeat> {
  const beats = new Map<string, NodeHeartbeat>()
  for (const [nodeId, json] of Object.entries(hash)) {
    let parsed: unknown
    try {
      parsed = JSON.parse(json)
    } catch {
      continue
    }
    const hb = parseHeartbeat(parsed)
    if (hb) beats.set(nodeId, hb)
  }
  return beats
}
