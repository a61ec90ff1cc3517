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
 * One change, once. `id` is the same for every delivery of it (the `webhook-id`, the SSE event's basis), and for its
 * re-emission by the outbox relay, so a receiver that sees it twice can drop the second: for changes an ingest event
 * caused, it is derived from that event's id, so a redelivered ingest event cannot make a second one.
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

/**
 * Something that passes events on (webhook fan-out, live updates). It throws (rejects) when it could not take the
 * event, so that the event stays in the outbox and is emitted again later; it must not throw for any other reason.
 */
export type PlatformEventSink = (event: PlatformEvent) => Promise<void> | void

export interface PlatformEvents {
  /** Adds a sink; every event emitted from then on reaches it. */
  subscribe(sink: PlatformEventSink): void
  /**
   * Hands an event to every sink, after the change it describes has committed. Never throws: resolves true when every
   * sink took the event, false when one failed (logged), so that the caller keeps the event's outbox row.
   */
  emit(event: PlatformEvent): Promise<boolean>
  /** False while nobody subscribed: the domain skips the reads an announcement needs. */
  readonly listened: boolean
}

/** An event id: `evt_` + the causing ingest event's id, else 16 random bytes. */
export const platformEventId = (sourceEventId?: string) => `evt_${sourceEventId ?? randomBytes(16).toString('base64url')}`

/**
 * The fan-out. Sinks run side by side and are awaited. A sink that fails is logged and reported (`false`), not retried
 * here: the event's outbox row stays, and the relay emits it again, to every sink, under the same id (webhook jobs and
 * receivers drop a second copy by that id; live updates carry state, so a repeat is harmless).
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
      const results = await Promise.allSettled(sinks.map(async (sink) => sink(event)))
      let passed = true
      for (const r of results) {
        if (r.status === 'rejected') {
          passed = false
          const err = r.reason as Error
          log.warn({ err: { message: err?.message }, eventId: event.id, type: event.type, streamId: event.streamId }, 'platform event not passed on')
        }
      }
      return passed
    }
  }
}

/**
 * No sinks: what the service uses when nothing listens (tests of the domain alone). Nothing is emitted, so outbox rows
 * stay for a relay that has sinks.
 */
export const noPlatformEvents: PlatformEvents = { listened: false, subscribe() {}, emit: async () => false }
