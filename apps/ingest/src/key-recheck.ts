import type { Logger } from './logger.js'

export interface HeldStream {
  streamId: number
  streamKey: string
}

export interface KeyRecheckDeps {
  /** The streams this node holds now, with the key each was published with. */
  held(): HeldStream[]
  /** True while this node still holds `streamId` under `streamKey` (not ended, not resumed with another key). */
  holds(streamId: number, streamKey: string): boolean
  /** The database's view of those streams; a stream it does not return is gone. */
  lookup(ids: number[]): Promise<Array<{ id: number; status: string; streamKey: string }>>
  /** The stream is over (ended through the api, or deleted): disconnect the publisher and end the stream here. */
  end(streamId: number, streamKey: string): Promise<void>
  /**
   * The stream is still on but its key was rotated to `newKey`: disconnect the publisher (it holds the old key) and
   * keep the stream in its reconnect window, for its owner to come back with the new key.
   */
  rotated(streamId: number, oldKey: string, newKey: string): void
  log: Logger
}

export interface RecheckResult {
  ended: number
  rotated: number
}

/**
 * One pass of the key recheck. Streams ended through the api or deleted lose their publisher and end. A rotated key
 * (the stream still `pending` or `live` in the database) is how an owner recovers from a leak: the publisher on the
 * old key is cut, the stream is not ended (see `LiveStreams.keyRotated`).
 * The verdict is taken against the snapshot the lookup was made for: a publish accepted while the lookup was in
 * flight is not in the answer, and must not be taken for a stream the database no longer has.
 */
export async function recheckKeys(deps: KeyRecheckDeps): Promise<RecheckResult> {
  const result: RecheckResult = { ended: 0, rotated: 0 }
  const held = deps.held()
  if (held.length === 0) return result
  const current = new Map((await deps.lookup(held.map((h) => h.streamId))).map((r) => [r.id, r]))
  for (const { streamId, streamKey } of held) {
    const row = current.get(streamId)
    if (row && row.status !== 'ended' && row.streamKey === streamKey) continue
    // Changed hands during the lookup (ended, or resumed under another key): the next pass judges it afresh.
    if (!deps.holds(streamId, streamKey)) continue
    if (row && row.status !== 'ended') {
      deps.log.warn({ streamId }, 'stream key rotated; disconnecting the publisher on the old key, the stream waits for the new one')
      deps.rotated(streamId, streamKey, row.streamKey)
      result.rotated++
      continue
    }
    deps.log.warn({ streamId }, 'stream ended or deleted; disconnecting its publisher')
    await deps.end(streamId, streamKey)
    result.ended++
  }
  return result
}
