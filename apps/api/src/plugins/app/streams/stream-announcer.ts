import type { FastifyBaseLogger } from 'fastify'
import type { PlatformEvent, PlatformEvents } from '../platform-events.js'
import type { OutboxEntry, OutboxStore } from './event-outbox.js'
import type { ParticipantRow, StreamStore } from './stream-store.js'
import { participantView, streamView, type StreamRow, type UrlConfig } from './stream-view.js'

export type AnnouncerLog = Pick<FastifyBaseLogger, 'warn' | 'error'>

export interface RelayOptions {
  /** Entries older than this are the relay's: their writer died or its sinks failed (`OUTBOX_RELAY_AFTER_MS`). */
  afterMs: number
  /** Entries older than this are dropped with an error instead of emitted again. */
  giveUpAfterMs?: number
  /** Entries claimed per transaction. */
  batch?: number
  /** Batches per round at most, while each is full and wholly emitted (a backlog after an outage drains fast). */
  maxBatches?: number
}

export interface RelayRound {
  emitted: number
  failed: number
  dropped: number
}

/**
 * Failed emissions in a row after which a relay round stops: the sinks are down (Redis away), and trying every claimed
 * entry would only log as many warnings. A few, not one, so that one entry that cannot be emitted holds up no other.
 */
const GIVE_UP_ROUND_AFTER_FAILURES = 3

/** A day: as long as webhook deliveries are retried, and as long as a delivery job is kept for deduplication. */
export const OUTBOX_GIVE_UP_AFTER_MS = 24 * 3600_000

const silentLog: AnnouncerLog = { warn() {}, error() {} }

/**
 * Announces committed changes from their outbox entries: right after the commit (`announce`) and, for entries left
 * behind, from the relay (`relay`). Both build the event the same way, from the stream's row as it is now (the data is
 * state; the entry gives the type, participant, reason and time) and under the entry's id, so a re-emitted event is
 * the same event to every receiver. An entry is deleted only once every sink took its event.
 */
export function createStreamAnnouncer(deps: { store: StreamStore; outbox: OutboxStore; events: PlatformEvents; urls: UrlConfig; log?: AnnouncerLog }) {
  const { store, outbox, events, urls } = deps
  const log = deps.log ?? silentLog

  /** The event an entry stands for, or undefined when its stream (or participation) is gone. */
  async function eventOf(e: OutboxEntry): Promise<PlatformEvent | undefined> {
    // One read on the announcement's path, after the commit: the stream, with the participant for a participant change.
    let row: StreamRow | undefined
    let participant: ParticipantRow | undefined
    if (e.participantUserId === null) row = await store.byId(e.streamId)
    else {
      const found = await store.withParticipant(e.streamId, e.participantUserId)
      if (!found?.participant) return undefined
      row = found.stream
      participant = found.participant
    }
    if (!row) return undefined
    return {
      id: e.eventId,
      type: e.type,
      timestamp: e.occurredAt.toISOString(),
      streamId: row.id,
      ownerId: row.userId,
      data: {
        stream: streamView(row, urls),
        ...(participant ? { participant: participantView(participant) } : {}),
        ...(e.reason ? { reason: e.reason } : {})
      }
    }
  }

  /** Emits one entry's event: `emitted` once every sink took it, `gone` when there is nothing left to announce. */
  async function emit(e: OutboxEntry): Promise<'emitted' | 'failed' | 'gone'> {
    const event = await eventOf(e)
    if (!event) return 'gone'
    return (await events.emit(event)) ? 'emitted' : 'failed'
  }

  return {
    /**
     * After the commit of the change that wrote `entry`: emits it and, when every sink took it, deletes the entry. The
     * delete is awaited (one primary-key round trip), so that the caller answers with the database settled (the fuzz
     * test checksums every table between requests), but its failure is only logged: it means a second emission later
     * under the same id, which receivers drop. Never throws: whatever fails leaves the entry to the relay. With nobody
     * listening in this process, the entry is left to a relay that has sinks.
     */
    async announce(entry: OutboxEntry): Promise<void> {
      if (!events.listened) return
      try {
        if ((await emit(entry)) === 'failed') return
      } catch (err) {
        log.warn({ err, eventId: entry.eventId, streamId: entry.streamId }, 'platform event left to the outbox relay')
        return
      }
      await outbox.delete(entry.eventId).catch((err: unknown) => log.warn({ err, eventId: entry.eventId }, 'outbox entry not deleted; it will be emitted again'))
    },

    /**
     * One round of the relay: entries older than `afterMs`, oldest first, each claimed by one relay of the deployment,
     * emitted again under their id; deleted once emitted, their attempts bumped when a sink failed. An entry whose stream
     * is gone, or older than `giveUpAfterMs`, is dropped (the latter with an error: its event is lost).
     */
    async relay(opts: RelayOptions): Promise<RelayRound> {
      const total: RelayRound = { emitted: 0, failed: 0, dropped: 0 }
      if (!events.listened) return total
      const limit = opts.batch ?? 100
      for (let round = 0; round < (opts.maxBatches ?? 10); round++) {
        const { claimed, failed } = await outbox.claim(
          { afterMs: opts.afterMs, expireAfterMs: opts.giveUpAfterMs ?? OUTBOX_GIVE_UP_AFTER_MS, limit },
          async (entries) => {
            const done: string[] = []
            const failed: string[] = []
            let inARow = 0
            for (const e of entries) {
              // The rest of the claim is released untouched at COMMIT, for the next round.
              if (inARow >= GIVE_UP_ROUND_AFTER_FAILURES) break
              if (e.expired) {
                log.error({ eventId: e.eventId, type: e.type, streamId: e.streamId, attempts: e.attempts }, 'platform event dropped: not passed on in time')
                total.dropped++
                done.push(e.eventId)
                continue
              }
              const outcome = await emit(e).catch((err: unknown) => {
                log.warn({ err, eventId: e.eventId }, 'outbox relay could not build the event')
                return 'failed' as const
              })
              if (outcome === 'failed') {
                inARow++
                total.failed++
                failed.push(e.eventId)
              } else {
                inARow = 0
                if (outcome === 'emitted') total.emitted++
                else total.dropped++
                done.push(e.eventId)
              }
            }
            return { done, failed }
          }
        )
        if (claimed < limit || failed > 0) break
      }
      return total
    }
  }
}
export type StreamAnnouncer = ReturnType<typeof createStreamAnnouncer>
