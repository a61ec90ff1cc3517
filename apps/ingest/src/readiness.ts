import type { Logger } from './logger.js'
import { everyNoOverlap } from './no-overlap-timer.js'

/** A dependency the node cannot do its job without, and how to ask whether it answers now. */
export interface ReadinessProbe {
  name: string
  /** Resolves when the dependency answers; rejects (or hangs past the timeout) when it does not. */
  check: () => Promise<unknown>
}

export interface Readiness {
  /** The latest verdict, for `/readyz`: what is down, by name. Synchronous: probes run in the background. */
  ready(): { ok: boolean; detail: Record<string, unknown> }
  stop(): void
}

/**
 * Readiness of an ingest node: Redis (events and heartbeats) and MySQL (the key check) must both answer. Before,
 * a node with no Redis answered `/healthz` 200 and took publishes whose events it could not deliver. The probes run
 * every `intervalMs`, each bounded by `timeoutMs`, never overlapping; until the first round ends the node is not ready.
 */
export function startReadiness(probes: ReadinessProbe[], opts: { intervalMs: number; timeoutMs: number; log: Logger }): Readiness {
  const down = new Map<string, string>(probes.map((p) => [p.name, 'not checked yet']))
  // Each probe catches its own failure: a round never rejects.
  const round = async () => {
    await Promise.all(
      probes.map(async (p) => {
        let timer: NodeJS.Timeout | undefined
        try {
          await Promise.race([
            p.check(),
            new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${opts.timeoutMs} ms`)), opts.timeoutMs)))
          ])
          if (down.delete(p.name)) opts.log.info({ dependency: p.name }, 'dependency answers again')
        } catch (err) {
          if (!down.has(p.name) || down.get(p.name) === 'not checked yet') opts.log.warn({ dependency: p.name, err: { message: (err as Error).message } }, 'dependency down: not ready')
          down.set(p.name, (err as Error).message)
        } finally {
          clearTimeout(timer)
        }
      })
    )
  }
  const timer = everyNoOverlap(round, opts.intervalMs, () => undefined)
  void timer.run()
  return {
    ready() {
      const detail: Record<string, unknown> = Object.fromEntries(probes.map((p) => [p.name, down.has(p.name) ? 'down' : 'up']))
      if (down.size > 0) detail.down = [...down.keys()]
      return { ok: down.size === 0, detail }
    },
    stop() {
      timer.stop()
    }
  }
}
