/** A repeating task started by `everyNoOverlap`. */
export interface NoOverlapTimer {
  /** Runs the task now, unless a run is still going; resolves when this run (or the skip) is over. */
  run(): Promise<void>
  /** No further runs; one already going finishes on its own. */
  stop(): void
}

/**
 * Runs `task` every `ms`, never two at once: a tick that finds the previous run unfinished is skipped, so a slow
 * dependency (a database that takes longer than the interval to answer) gets one request at a time rather than a
 * pile. A rejection goes to `onError`. The timer is unref'd: it never keeps the process alive on its own.
 */
export function everyNoOverlap(task: () => Promise<unknown>, ms: number, onError: (err: unknown) => void): NoOverlapTimer {
  let running = false
  let stopped = false
  const run = async () => {
    if (running || stopped) return
    running = true
    try {
      await task()
    } catch (err) {
      onError(err)
    } finally {
      running = false
    }
  }
  const timer = setInterval(() => void run(), ms)
  timer.unref()
  return {
    run,
    stop() {
      stopped = true
      clearInterval(timer)
    }
  }
}
