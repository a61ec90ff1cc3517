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
  /** Disconnects the publisher and ends the stream on this node. */
  end(streamId: number, streamKey: string): Promise<void>
  log: Logger
}

/**
 * One pass of the key recheck: streams ended through the api, deleted, or whose key was rotated lose their publisher.
 * The verdict is taken against the snapshot the lookup was made for: a publish accepted while the lookup was in
 * flight is not in the answer, and must not be taken for a stream the database no longer has.
 */
export async function recheckKeys(deps: KeyRecheckDeps): Promise<number> {
  const held = deps.held()
  if (held.length === 0) return 0
  const current = new Map((await deps.lookup(held.map((h) => h.streamId))).map((r) => [r.id, r]))
  let ended = 0
  for (const { streamId, streamKey } of held) {
    const row = current.get(streamId)
    if (row && row.status !== 'ended' && row.streamKey === streamKey) continue
    // Changed hands during the lookup (ended, or resumed under another key): the next pass judges it afresh.
    if (!deps.holds(streamId, streamKey)) continue
    deps.log.warn({ streamId }, 'stream ended or key revoked; disconnecting its publisher')
    await deps.end(streamId, streamKey)
    ended++
  }
  return ended
}
