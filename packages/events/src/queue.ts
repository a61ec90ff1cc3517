import { randomUUID } from 'node:crypto'

/** The BullMQ queue ingest produces into and the api consumes. */
export const STREAM_EVENTS_QUEUE = 'stream-events'

/** Redis hash (under the queue prefix) holding each node's latest heartbeat, by node id. */
export const heartbeatKey = (prefix: string): string => `${prefix}:ingest-nodes`

/**
 * A new event id. BullMQ job ids must not contain `:` and must not be digits only,
 * so ids are `evt_<uuid without dashes>`.
 */
export function newEventId(): string {
  return `evt_${randomUUID().replaceAll('-', '')}`
}

/** The job id for an event: its own id (dedupes re-sends at the queue). */
export function jobIdFor(event: { id: string }): string {
  return event.id
}

/** Retry policy shared by every producer: exponential backoff, failed jobs kept for inspection. */
export const DEFAULT_JOB_OPTIONS = {
  attempts: 12,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: { age: 3600, count: 10_000 },
  removeOnFail: false
} as const
