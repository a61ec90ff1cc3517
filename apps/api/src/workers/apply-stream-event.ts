import { UnrecoverableError } from 'bullmq'
import { InvalidEventError, parseStreamEvent, type StreamEvent } from '@livestream/events'
import type { Outcome } from '../plugins/app/streams/apply-event.js'
import type { StreamsService } from '../plugins/app/streams/streams-service.js'

export { ViewerNotJoinedError, type Outcome } from '../plugins/app/streams/apply-event.js'

export interface ApplyDeps {
  streams: Pick<StreamsService, 'applyEvent'>
}

/**
 * The consumer's processor: one job's payload, checked against the event contract, applied through the streams
 * service. A payload that is not a valid event can never succeed: it fails at once instead of being retried; anything
 * else (MySQL down, a leave racing its join) throws and is retried with the job's backoff.
 */
export async function applyStreamEvent(data: unknown, deps: ApplyDeps): Promise<{ event: StreamEvent; outcome: Outcome }> {
  let event: StreamEvent
  try {
    event = parseStreamEvent(data)
  } catch (err) {
    if (err instanceof InvalidEventError) throw new UnrecoverableError(err.message)
    throw err
  }
  return { event, outcome: await deps.streams.applyEvent(event) }
}
