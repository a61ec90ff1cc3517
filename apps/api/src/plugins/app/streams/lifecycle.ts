import type { StreamStatus } from '@livestream/db'
import { ConflictError } from '../../../errors.js'

/** The only legal moves. `ended` is final: nothing leaves it, so late or repeated events change nothing. */
export const TRANSITIONS: Readonly<Record<StreamStatus, readonly StreamStatus[]>> = {
  pending: ['live', 'ended'],
  live: ['ended'],
  ended: []
}

export function canTransition(from: StreamStatus, to: StreamStatus): boolean {
  return TRANSITIONS[from].includes(to)
}

/** The states a stream may be in for a move to `to`. */
export function sourcesOf(to: StreamStatus): StreamStatus[] {
  return (Object.keys(TRANSITIONS) as StreamStatus[]).filter((from) => canTransition(from, to))
}

export class TransitionError extends ConflictError {
  constructor(
    readonly from: StreamStatus,
    readonly to: StreamStatus
  ) {
    super(`cannot change status from ${from} to ${to}`)
    this.name = 'TransitionError'
  }
}
