import type { StreamStatus } from '@livestream/db'
import { DomainError } from '../domain-errors.js'

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

/** The guard every write of a move carries: `status IN (<its sources>)`, from the table above. */
export function sqlGuard(to: StreamStatus): string {
  return `status IN (${sourcesOf(to)
    .map((s) => `'${s}'`)
    .join(', ')})`
}

export class TransitionError extends DomainError {
  constructor(
    readonly from: StreamStatus,
    readonly to: StreamStatus
  ) {
    super('conflict', `cannot change status from ${from} to ${to}`)
    this.name = 'TransitionError'
  }
}
