import { ServiceUnavailableError } from '../../../errors.js'

export interface HashGateOptions {
  /** Hashes computed at once (about the number of cores: each argon2 pass keeps one busy). */
  concurrency: number
  /** Hashes that may wait for a turn; past this a request is told to come back (503 + Retry-After). */
  maxWaiting: number
}

/**
 * A bound on password hashing for the whole process. argon2 costs ~19 MiB and tens of milliseconds of a core per
 * login or registration; unbounded, a few hundred concurrent logins from many addresses (each under its own rate
 * limit) starve every other request and time out. Beyond the cap, an answer at once beats a queue nobody survives.
 */
export function createHashGate(opts: HashGateOptions) {
  let running = 0
  const waiting: Array<() => void> = []
  const stats = { peakRunning: 0, refused: 0 }

  const release = () => {
    const next = waiting.shift()
    if (next) next()
    else running--
  }

  return {
    stats,
    /** Runs `work` when a hashing slot is free; throws ServiceUnavailableError when too many already wait. */
    async run<T>(work: () => Promise<T>): Promise<T> {
      if (running < opts.concurrency) running++
      else if (waiting.length < opts.maxWaiting) await new Promise<void>((resolve) => waiting.push(resolve))
      else {
        stats.refused++
        throw new ServiceUnavailableError('too many logins and registrations at once, try again shortly', 1)
      }
      stats.peakRunning = Math.max(stats.peakRunning, running)
      try {
        return await work()
      } finally {
        release()
      }
    }
  }
}
export type HashGate = ReturnType<typeof createHashGate>
