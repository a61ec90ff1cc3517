import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { ParticipantView, StreamView } from './streams/stream-view.js'

/**
 * What the platform hears of: the changes of a stream and its audience, as webhooks and live updates carry them. The
 * names follow Mux's and Standard Webhooks' shape (`noun.verb`), and are the filter values of a webhook endpoint.
 */
export const PLATFORM_EVENT_TYPES = [
  'stream.created',
  'stream.live',
  'stream.reconnecting',
  'stream.ended',
  'stream.key_rotated',
  'participant.joined',
  'participant.left',
  'stream.viewers'
] as const
export type PlatformEventType = (typeof PLATFORM_EVENT_TYPES)[number]

export interface PlatformEventData {
  /** The stream as anyone who may read it sees it: never its key. */
  stream: StreamView
  /** `participant.*`: who. */
  participant?: ParticipantView
  /** `stream.ended`: why (`publisher-left`, `ended-by-owner`, `node-lost`, `no-publisher`, ...). */
  reason?: string
}

/**
 * One change, once. `id` is the same for every delivery of it (the `webhook-id`, the SSE event's basis), so a receiver
 * that sees it twice can drop the second: for changes an ingest event caused, it is derived from that event's id, so
 * a redelivered ingest event cannot make a second one.
 */
export interface PlatformEvent {
  id: string
  type: PlatformEventType
  /** When the change happened (ISO 8601). */
  timestamp: string
  streamId: number
  /** The stream's owner: whose webhook endpoints hear of it. */
  ownerId: number
  data: PlatformEventData
}

/** Something that passes events on (webhook fan-out, live updates). It must not throw for one event's sake. */
export type PlatformEventSink = (event: PlatformEvent) => Promise<void> | void

export interface PlatformEvents {
  /** Adds a sink; every event emitted from then on reaches it. */
  subscribe(sink: PlatformEventSink): void
  /** Hands an event to every sink, after the change it describes has committed. Never throws. */
  emit(event: PlatformEvent): Promise<void>
  /** False while nobody subscribed: the domain skips the reads an announcement needs. */
  readonly listened: boolean
}

/** An event id: `evt_` + the causing ingest event's id, else 16 random bytes. */
export const platformEventId = (sourceEventId?: string) => `evt_${sourceEventId ?? randomBytes(16).toString('base64url')}`

/**
 * The fan-out. Sinks run side by side and are awaited, so that an ingest event's job completes only once its effects
 * were handed on (a crash before that redelivers the job). A sink that fails is logged, not retried here: each sink
 * owns its durability (webhooks go through their own queue).
 */
export function createPlatformEvents(log: Pick<FastifyBaseLogger, 'warn'>): PlatformEvents {
  const sinks: PlatformEventSink[] = []
  return {
    get listened() {
      return sinks.length > 0
    },
    subscribe(sink) {
      sinks.push(sink)
    },
    async emit(event) {
      if (sinks.length === 0) return
      const results = await Promise.allSettled(sinks.map(async (sink) => sink(event)))
      for (const r of results) {
        if (r.status === 'rejected') {
          const err = r.reason as Error
          log.warn({ err: { message: err?.message }, eventId: event.id, type: event.type, streamId: event.streamId }, 'platform event not passed on')
        }
      }
    }
  }
}

/** No sinks: what the service uses when nothing listens (tests of the domain alone). */
export const noPlatformEvents: PlatformEvents = { listened: false, subscribe() {}, emit: async () => {} }
